# Ada3D stage 2 with the 3D drop moved before the stem: the predictor reads the voxel features (mean point of each
# voxel), and whole voxel columns are dropped before the encoder's first convolution, so every 3D layer runs on the
# kept voxels only. After layer 1 (the paper's placement, the stage-2 config this one extends) the stem and layer 1
# still see every voxel. Only the drop stages and the predictor's site encoder differ.
# --cfg-options load_from=<stage-1 checkpoint> (stage 1 is shared: it drops nothing)
#
# Measured on the H100 (docs/benchmarks.md, sessions 12-13), 3-class 3D AP_R40 mod on the 1000 synthetic val
# frames, from a stage 1 of 82.8, keeping 50% of the input columns: 80.9 with the site encoder (Ped 69.1; 80.5 at
# 40%), 77.9 with the mean of the raw voxel features (Ped 61.4; 80.6 / 74.7 / 66.5 at 60 / 40 / 30%); single
# training runs vary by ~2 AP. The 3D part (encode_3d) under CUDA graphs, batch 16: 10.4 / 9.0 ms at 50 / 40%
# against the dense 13.6-14.1 (the drops after layers 1-2: 13.7); batch 4: 4.0 / 3.7 vs 4.4 ms. A drop after the
# stem instead ("model.adaptive.drop_3d_stages=[conv_input]") lost 9 AP
# here: its predictor on the stem's features drops 20% of the car cells, and its 3D part is no faster than dense.
_base_ = ["./ada3d_second_hv_secfpn_6e_synthkitti-3d-3class_stage2.py"]

# the predictor encodes each voxel (linear, BN, ReLU) and pools per cell by mean and max: on 40 fresh frames it drops
# 5% of the pedestrian cells and 3% of the cyclist cells, the mean of the raw voxel features 17% of each
model = dict(adaptive=dict(drop_3d_stages=("input",), keep_ratios_3d=(0.5,),
                           predictor=dict(site_encoder_inputs=("input",))))
