# Ada3D stage 3 for the drop before the stem: fine-tune the detector with 50% of the input columns kept (the
# predictor frozen, the detector's BatchNorm statistics fixed: `norm_eval` of the stage-3 config this extends), then
# deploy at any ratio with "model.adaptive.keep_ratios_3d=[R]".
# Measured on the H100 (docs/benchmarks.md, session 16), 3-class 3D AP_R40 mod on the 1000 synthetic val frames,
# dense 84.1 (retrained): this config from a stage 2 of 83.3 gives 83.8 / 84.6 / 84.4 at 40 / 45 / 50% of the input
# columns (48.6 / 44.4 / 40.8% fewer voxels); trained at 40% instead, 83.6 / 84.6 / 84.4 (seed 0) and 82.8 at 40%
# (seed 1). From the other stage 2 (84.0): 82.6 at 40% trained at 40%, 83.9 at 50% trained at 50%.
# Session 17, more runs of this config: seeds 1 / 2 from the 83.3 stage 2 give 82.8 / 83.6 at 40%, seed 0 from the
# 84.0 stage 2 83.0; the mean of the four runs is 83.3 at 40%, 83.8 at 45%, 84.0 at 50%. At 40%, batch 16, H100:
# 3D part 1.51-1.55x and 2D part 2.23x faster than dense (docs/benchmarks.md, session 17).
# --cfg-options load_from=<stage-2 checkpoint of ada3d-input_..._stage2.py>
_base_ = ["./ada3d_second_hv_secfpn_6e_synthkitti-3d-3class_stage3.py"]

# the predictor's site encoder as in stage 2 (its weights come with the stage-2 checkpoint)
model = dict(adaptive=dict(drop_3d_stages=("input",), keep_ratios_3d=(0.5,),
                           predictor=dict(site_encoder_inputs=("input",))))
