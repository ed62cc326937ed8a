# A small SECOND for CPU demos and tests: 0.1 x 0.1 x 0.2 m voxels (8x fewer cells than SECOND's), thinner
# sparse encoder and BEV backbone; the FPN upsamples to a 0.4 m anchor grid (SECOND's). Trains on the
# simple synthetic data in minutes on two CPU cores.
_base_ = ["./second_hv_secfpn_synthkitti-3d-3class.py"]

voxel_size = [0.1, 0.1, 0.2]
model = dict(
    data_preprocessor=dict(voxel_layer=dict(voxel_size=voxel_size, max_voxels=(30000, 40000))),
    middle_encoder=dict(
        sparse_shape=[21, 800, 704],  # (z + 1, y, x) voxels of [0, 70.4] x [-40, 40] x [-3, 1] m
        base_channels=16,
        output_channels=128,
        encoder_channels=((16,), (32, 32), (64, 64), (64, 64)),
        # z: 21 -> 11 -> 6 -> 3 -> 1 (SECOND's (0, 1, 1) padding would leave no layer for the last conv)
        encoder_paddings=((1,), (1, 1), (1, 1), ((1, 1, 1), 1)),
    ),
    backbone=dict(layer_nums=[3, 3], layer_strides=[1, 2], out_channels=[64, 128]),
    neck=dict(upsample_strides=[2, 4], out_channels=[64, 64]),
)

# 300 iterations of 2 samples (about a second each on two CPU cores, 0.05 s on a GPU) with a one-cycle
# learning rate, AdamW as SECOND's; iterations rather than epochs, whatever the size of the data.
lr = 0.003
optim_wrapper = dict(optimizer=dict(lr=lr))
param_scheduler = [dict(type="OneCycleLR", eta_max=lr, total_steps=300, pct_start=0.4, by_epoch=False)]
train_cfg = dict(_delete_=True, type="IterBasedTrainLoop", max_iters=300, val_interval=300)
train_dataloader = dict(batch_size=2, num_workers=2)
default_hooks = dict(logger=dict(interval=10), checkpoint=dict(by_epoch=False, interval=300))
log_processor = dict(by_epoch=False)
