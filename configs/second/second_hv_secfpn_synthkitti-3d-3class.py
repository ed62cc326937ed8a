# SECOND on the synthetic KITTI-format data (data/synthkitti): the KITTI model and schedule.
_base_ = [
    "../_base_/models/second_hv_secfpn_kitti.py",
    "../_base_/datasets/synthkitti-3d-3class.py",
    "../_base_/schedules/cyclic-40e.py",
    "../_base_/default_runtime.py",
]
