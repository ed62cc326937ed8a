# Ada3D stage 3 for the drop before the stem: fine-tune the detector with the drops on (the predictor frozen),
# with the schedule of the stage-3 config. As with the drops after layers 1-2, it lowered AP on the synthetic
# benchmark (3-class 3D AP_R40 mod 77.9 -> 76.2 at 50% of the input columns, mean predictor): deploy stage 2.
# --cfg-options load_from=<stage-2 checkpoint of ada3d-input_..._stage2.py>
_base_ = ["./ada3d_second_hv_secfpn_6e_synthkitti-3d-3class_stage3.py"]

# the predictor's site encoder as in stage 2 (its weights come with the stage-2 checkpoint)
model = dict(adaptive=dict(drop_3d_stages=("input",), keep_ratios_3d=(0.5,),
                           predictor=dict(site_encoder_inputs=("input",))))
