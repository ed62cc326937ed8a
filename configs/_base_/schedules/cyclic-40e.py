# SECOND's one-cycle-like schedule (mmdet3d's cyclic-40e): over 16 epochs the learning rate rises on a
# cosine from lr to 10 lr while Adam's beta1 falls from 0.95 to 0.85 / 0.95 = 0.895; over the next 24
# epochs the learning rate falls to 1e-4 lr and beta1 rises to 1 (mmdet3d's values; eta_min is absolute).
lr = 0.0018
optim_wrapper = dict(
    type="OptimWrapper",
    optimizer=dict(type="AdamW", lr=lr, betas=(0.95, 0.99), weight_decay=0.01),
    clip_grad=dict(max_norm=10, norm_type=2),
)
param_scheduler = [
    dict(type="CosineAnnealingLR", T_max=16, eta_min=lr * 10, begin=0, end=16, by_epoch=True,
         convert_to_iter_based=True),
    dict(type="CosineAnnealingLR", T_max=24, eta_min=lr * 1e-4, begin=16, end=40, by_epoch=True,
         convert_to_iter_based=True),
    dict(type="CosineAnnealingMomentum", T_max=16, eta_min=0.85 / 0.95, begin=0, end=16, by_epoch=True,
         convert_to_iter_based=True),
    dict(type="CosineAnnealingMomentum", T_max=24, eta_min=1, begin=16, end=40, by_epoch=True,
         convert_to_iter_based=True),
]
train_cfg = dict(type="EpochBasedTrainLoop", max_epochs=40, val_interval=1)
val_cfg = dict(type="ValLoop")
test_cfg = dict(type="TestLoop")
# the batch size the learning rate was tuned for (8 GPUs x 6 samples)
auto_scale_lr = dict(enable=False, base_batch_size=48)
