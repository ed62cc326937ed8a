# SECOND on synthetic KITTI (3000 train / 1000 val frames, `tools/create_data.py synthkitti --frames 4000`)
# with a schedule that fits minutes of one GPU: 3000 iterations of 6 samples (6 passes over the training
# frames, no RepeatDataset), one-cycle learning rate (AdamW, peak 3e-3), validation at the end.
_base_ = ["./second_hv_secfpn_synthkitti-3d-3class.py"]

lr = 0.003
max_iters = 3000
optim_wrapper = dict(optimizer=dict(lr=lr))
param_scheduler = [dict(type="OneCycleLR", eta_max=lr, total_steps=max_iters, pct_start=0.4, by_epoch=False)]
train_cfg = dict(_delete_=True, type="IterBasedTrainLoop", max_iters=max_iters, val_interval=max_iters)
train_dataloader = dict(batch_size=6, num_workers=12, dataset=dict(times=1))
val_dataloader = dict(batch_size=4, num_workers=8)
test_dataloader = val_dataloader
default_hooks = dict(logger=dict(interval=50), checkpoint=dict(by_epoch=False, interval=500, max_keep_ckpts=2))
log_processor = dict(by_epoch=False)
