# Ada3D stage 3 for the drop before the stem: fine-tune the detector with 40% of the input columns kept (the
# predictor frozen, the detector's BatchNorm statistics fixed: `norm_eval` of the stage-3 config this extends).
# Measured on the H100 (docs/benchmarks.md, session 15), 3-class 3D AP_R40 mod on the 1000 synthetic val frames
# (dense 83.8), from a stage 1 of 84.4 and this stage at 40%: evaluated at 40 / 50 / 55 / 60% of the input columns,
# 82.5 / 83.0 / 83.2 / 83.6; deploy with "model.adaptive.keep_ratios_3d=[R]". From the 82.8 stage 1: 81.5-81.7 at
# 40% in three runs (stage 2: 80.5; this stage with batch statistics: 79.4).
# --cfg-options load_from=<stage-2 checkpoint of ada3d-input_..._stage2.py>
_base_ = ["./ada3d_second_hv_secfpn_6e_synthkitti-3d-3class_stage3.py"]

# the predictor's site encoder as in stage 2 (its weights come with the stage-2 checkpoint)
model = dict(adaptive=dict(drop_3d_stages=("input",), keep_ratios_3d=(0.4,),
                           predictor=dict(site_encoder_inputs=("input",))))
