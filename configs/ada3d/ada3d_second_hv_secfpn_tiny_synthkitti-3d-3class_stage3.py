# Ada3D stage 3: fine-tune the detector with dropping on (the predictor frozen), as in the paper (on the 6e
# synthetic benchmark it lowered AP; see its stage-3 config).
# --cfg-options load_from=<stage-2 checkpoint>
_base_ = ["./ada3d_second_hv_secfpn_tiny_synthkitti-3d-3class_stage2.py"]

model = dict(adaptive=dict(train_stage="finetune"))
lr = 0.0002
max_iters = 60
optim_wrapper = dict(optimizer=dict(lr=lr))
param_scheduler = [dict(type="OneCycleLR", eta_max=lr, total_steps=max_iters, pct_start=0.3, by_epoch=False)]
train_cfg = dict(max_iters=max_iters, val_interval=max_iters)
default_hooks = dict(checkpoint=dict(interval=max_iters))
