# SECOND (Yan et al. 2018) for KITTI's three classes, as mmdet3d's second_hv_secfpn_kitti.py.
# Stage in_channels are left out: VoxelNet takes them from the previous stage's out_channels.
voxel_size = [0.05, 0.05, 0.1]

model = dict(
    type="VoxelNet",
    data_preprocessor=dict(
        type="Det3DDataPreprocessor",
        voxel=True,
        voxel_layer=dict(
            max_num_points=5,
            point_cloud_range=[0, -40, -3, 70.4, 40, 1],
            voxel_size=voxel_size,
            max_voxels=(16000, 40000),  # (training, testing)
        ),
    ),
    voxel_encoder=dict(type="HardSimpleVFE"),
    middle_encoder=dict(type="SparseEncoder", sparse_shape=[41, 1600, 1408]),  # (z + 1, y, x) voxels
    backbone=dict(type="SECOND", layer_nums=[5, 5], layer_strides=[1, 2], out_channels=[128, 256]),
    neck=dict(type="SECONDFPN", upsample_strides=[1, 2], out_channels=[256, 256]),
    bbox_head=dict(
        type="Anchor3DHead",
        num_classes=3,
        use_direction_classifier=True,
        anchor_generator=dict(
            type="Anchor3DRangeGenerator",
            # Pedestrian, Cyclist, Car: anchor bottoms at z = -0.6, -0.6, -1.78 m (mmdet3d's values)
            ranges=[
                [0, -40.0, -0.6, 70.4, 40.0, -0.6],
                [0, -40.0, -0.6, 70.4, 40.0, -0.6],
                [0, -40.0, -1.78, 70.4, 40.0, -1.78],
            ],
            sizes=[[0.8, 0.6, 1.73], [1.76, 0.6, 1.73], [3.9, 1.6, 1.56]],
            rotations=[0, 1.57],
            reshape_out=False,
        ),
        diff_rad_by_sin=True,
        bbox_coder=dict(type="DeltaXYZWLHRBBoxCoder"),
        loss_cls=dict(type="FocalLoss", use_sigmoid=True, gamma=2.0, alpha=0.25, loss_weight=1.0),
        loss_bbox=dict(type="SmoothL1Loss", beta=1.0 / 9.0, loss_weight=2.0),
        loss_dir=dict(type="CrossEntropyLoss", use_sigmoid=False, loss_weight=0.2),
    ),
    train_cfg=dict(
        # one assigner per anchor size, in the order of the sizes; SECOND's nearest-BEV IoU
        assigner=[
            dict(  # Pedestrian
                type="Max3DIoUAssigner",
                iou_calculator=dict(type="BboxOverlapsNearest3D"),
                pos_iou_thr=0.35,
                neg_iou_thr=0.2,
                min_pos_iou=0.2,
                ignore_iof_thr=-1,
            ),
            dict(  # Cyclist
                type="Max3DIoUAssigner",
                iou_calculator=dict(type="BboxOverlapsNearest3D"),
                pos_iou_thr=0.35,
                neg_iou_thr=0.2,
                min_pos_iou=0.2,
                ignore_iof_thr=-1,
            ),
            dict(  # Car
                type="Max3DIoUAssigner",
                iou_calculator=dict(type="BboxOverlapsNearest3D"),
                pos_iou_thr=0.6,
                neg_iou_thr=0.45,
                min_pos_iou=0.45,
                ignore_iof_thr=-1,
            ),
        ],
        pos_weight=-1,
    ),
    test_cfg=dict(use_rotate_nms=True, nms_thr=0.01, score_thr=0.1, min_bbox_size=0, nms_pre=100, max_num=50),
)
