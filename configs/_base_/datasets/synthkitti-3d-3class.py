# The synthetic KITTI-format data written by ada3d's LiDAR simulator (data/synthkitti), three classes:
# KITTI's pipeline and evaluation with another data root; the simulated scans are full scans (velodyne/).
_base_ = ["./kitti-3d-3class.py"]

data_root = "data/synthkitti/"
class_names = ["Pedestrian", "Cyclist", "Car"]
point_cloud_range = [0, -40, -3, 70.4, 40, 1]
db_sampler = dict(
    data_root=data_root,
    info_path=data_root + "kitti_dbinfos_train.pkl",
    rate=1.0,
    prepare=dict(filter_by_difficulty=[-1], filter_by_min_points=dict(Car=5, Pedestrian=10, Cyclist=10)),
    classes=class_names,
    sample_groups=dict(Car=12, Pedestrian=6, Cyclist=6),
    points_loader=dict(type="LoadPointsFromFile", coord_type="LIDAR", load_dim=4, use_dim=4),
)
# the pipeline is restated because the ground-truth sampler inside it names the data root
train_pipeline = [
    dict(type="LoadPointsFromFile", coord_type="LIDAR", load_dim=4, use_dim=4),
    dict(type="LoadAnnotations3D", with_bbox_3d=True, with_label_3d=True),
    dict(type="ObjectSample", db_sampler=db_sampler),
    dict(
        type="ObjectNoise",
        num_try=100,
        translation_std=[1.0, 1.0, 0.5],
        global_rot_range=[0.0, 0.0],
        rot_range=[-0.78539816, 0.78539816],
    ),
    dict(type="RandomFlip3D", flip_ratio_bev_horizontal=0.5),
    dict(type="GlobalRotScaleTrans", rot_range=[-0.78539816, 0.78539816], scale_ratio_range=[0.95, 1.05]),
    dict(type="PointsRangeFilter", point_cloud_range=point_cloud_range),
    dict(type="ObjectRangeFilter", point_cloud_range=point_cloud_range),
    dict(type="PointShuffle"),
    dict(type="Pack3DDetInputs", keys=["points", "gt_bboxes_3d", "gt_labels_3d"]),
]
train_dataloader = dict(
    dataset=dict(
        dataset=dict(data_root=data_root, data_prefix=dict(pts="training/velodyne"), pipeline=train_pipeline)
    )
)
val_dataloader = dict(dataset=dict(data_root=data_root, data_prefix=dict(pts="training/velodyne")))
test_dataloader = val_dataloader
val_evaluator = dict(ann_file=data_root + "kitti_infos_val.pkl")
test_evaluator = val_evaluator
