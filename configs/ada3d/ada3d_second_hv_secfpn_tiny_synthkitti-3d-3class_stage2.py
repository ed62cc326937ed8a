# Ada3D stage 2: train the importance predictor alone (detector frozen, BatchNorm statistics included) to
# predict the ground-truth centre heatmap, with the stage-3 keep ratios already dropping.
# --cfg-options load_from=<stage-1 checkpoint>
_base_ = ["./ada3d_second_hv_secfpn_tiny_synthkitti-3d-3class_stage1.py"]

model = dict(adaptive=dict(keep_ratios_3d=(0.6, 0.8), keep_ratio_bev=0.75, train_stage="predictor"))
lr = 0.003
max_iters = 300  # 100 left the predictor dropping 24% of the ground-truth cells after encoder_layer1
optim_wrapper = dict(optimizer=dict(lr=lr))
param_scheduler = [dict(type="OneCycleLR", eta_max=lr, total_steps=max_iters, pct_start=0.3, by_epoch=False)]
train_cfg = dict(max_iters=max_iters, val_interval=max_iters + 1)  # nothing to validate: only the predictor trained
default_hooks = dict(checkpoint=dict(interval=max_iters))
