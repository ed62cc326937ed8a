# Ada3D stage 2 with the 3D drop moved before the stem: the predictor reads the voxel features (mean point of each
# voxel, pooled per importance cell) and whole voxel columns are dropped before the encoder's first convolution,
# so every 3D layer runs on the kept voxels only. After layer 1 (the paper's placement, the stage-2 config this one
# extends) the stem and layer 1 still see every voxel, and on the H100 dropping there cannot make the 3D backbone
# 1.5x faster (docs/benchmarks.md, "the ceiling of voxel dropping"). Only the drop stages differ.
# --cfg-options load_from=<stage-1 checkpoint> (stage 1 is shared: it drops nothing)
_base_ = ["./ada3d_second_hv_secfpn_6e_synthkitti-3d-3class_stage2.py"]

model = dict(adaptive=dict(drop_3d_stages=("input",), keep_ratios_3d=(0.5,)))
