# Ada3D stage 3 for the drop before the stem: fine-tune the detector with the drops on (the predictor frozen),
# with the schedule of the stage-3 config.
# --cfg-options load_from=<stage-2 checkpoint of ada3d-input_..._stage2.py>
_base_ = ["./ada3d_second_hv_secfpn_6e_synthkitti-3d-3class_stage3.py"]

model = dict(adaptive=dict(drop_3d_stages=("input",), keep_ratios_3d=(0.5,)))
