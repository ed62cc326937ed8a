# Ada3D stage 2 with the 3D drop moved before the stem: the predictor reads the voxel features (mean point of each
# voxel, pooled per importance cell) and whole voxel columns are dropped before the encoder's first convolution,
# so every 3D layer runs on the kept voxels only. After layer 1 (the paper's placement, the stage-2 config this one
# extends) the stem and layer 1 still see every voxel. Only the drop stages differ.
# --cfg-options load_from=<stage-1 checkpoint> (stage 1 is shared: it drops nothing)
#
# The trade-off, measured on the H100 (docs/benchmarks.md, session 12): this is the faster, less accurate variant.
# 3-class 3D AP_R40 mod on the 1000 synthetic val frames, stage 1 82.8: keeping 60 / 50 / 40 / 30% of the input
# columns gives 80.6 / 77.9 / 74.7 / 66.5 (the drops after layer 1 and 2 lose 0.8). The 3D part under CUDA graphs,
# batch 16: 12.9 / 11.9 / 10.1 ms at 60 / 50 / 40% against the dense 14.0 (the drops after layers 1-2: 15.6);
# at batch 4 about the dense time (4.9 / 4.5 / 4.1 vs 4.5 ms). Single training runs vary by ~2 AP (session 13: the
# same recipe from another stage 1 gave 73.6 at 50%). A drop after the stem instead (--cfg-options
# "model.adaptive.drop_3d_stages=[conv_input]") kept stage 1's AP on the tiny CPU model, but not here: 73.8 at 50%,
# its predictor on the stem's features drops 20% of the car cells, and its 3D part is no faster than dense.
_base_ = ["./ada3d_second_hv_secfpn_6e_synthkitti-3d-3class_stage2.py"]

model = dict(adaptive=dict(drop_3d_stages=("input",), keep_ratios_3d=(0.5,)))
