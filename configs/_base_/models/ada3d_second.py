# The keys that turn a SECOND config into Ada3D (Zhao et al., ICCV 2023): the detector type, the BEV backbone on
# sparse_ops (SparseSECOND, Sparsity-Preserving BatchNorm), the neck on its active pixels and the adaptive
# settings, here stage 1's (nothing dropped). A config lists this file after its SECOND config in `_base_` and
# sets `model = {{_base_.ada3d}}`.
ada3d = dict(
    type="Ada3DVoxelNet",
    # 3 dilating convs in the first stage: the active set grows by 3 pixels, so car centres without a LiDAR return
    # get features (without them stage 1 lost 17 Car 3D AP on the synthetic benchmark)
    backbone=dict(type="SparseSECOND", dilating_convs=(3, 1)),
    # the neck runs on the backbone's active pixels too (at inference; its parameters are SECONDFPN's)
    neck=dict(type="SparseSECONDFPN"),
    adaptive=dict(
        predictor=dict(type="ImportancePredictor", hidden_channels=32, groups=4),
        filter=dict(type="SpatialFilter", density_prior=dict(kernel=16, alpha=0.2, eps=1e-4)),
        drop_3d_stages=("encoder_layer1", "encoder_layer2"),
        keep_ratios_3d=(1.0, 1.0),
        keep_ratio_bev=1.0,
        footprint_floor=0.5,  # the predictor's target is >= 0.5 inside box footprints: it learns to keep whole objects
        train_stage="detector",
    ),
)
