# Ada3D stage 1 (Zhao et al., ICCV 2023) on the synthetic-KITTI SECOND: the detector with its BEV backbone on
# sparse_ops (SparseSECOND, Sparsity-Preserving BatchNorm), trained with nothing dropped. The only keys that
# differ from the dense config are the model type, the backbone type and `adaptive`. Initialise it from the
# dense SECOND checkpoint (conv weights load into SparseSECOND's layout): --cfg-options load_from=CKPT.
_base_ = ["../second/second_hv_secfpn_tiny_synthkitti-3d-3class.py"]

model = dict(
    type="Ada3DVoxelNet",
    backbone=dict(type="SparseSECOND"),
    adaptive=dict(
        predictor=dict(type="ImportancePredictor", hidden_channels=64, groups=4),
        filter=dict(type="SpatialFilter", density_prior=dict(kernel=16, alpha=0.2, eps=1e-4)),
        drop_3d_stages=("encoder_layer1", "encoder_layer2"),
        keep_ratios_3d=(1.0, 1.0),
        keep_ratio_bev=1.0,
        train_stage="detector",
    ),
)

# a short fine-tune from the dense checkpoint
lr = 0.001
max_iters = 60
optim_wrapper = dict(optimizer=dict(lr=lr))
param_scheduler = [dict(type="OneCycleLR", eta_max=lr, total_steps=max_iters, pct_start=0.3, by_epoch=False)]
train_cfg = dict(max_iters=max_iters, val_interval=max_iters)
default_hooks = dict(checkpoint=dict(interval=max_iters))
