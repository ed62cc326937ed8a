# SECOND on KITTI, three classes: mmdet3d's model, data pipeline and 40-epoch cyclic schedule
# (over a training set repeated twice, as mmdet3d's 80-epoch config).
_base_ = [
    "../_base_/models/second_hv_secfpn_kitti.py",
    "../_base_/datasets/kitti-3d-3class.py",
    "../_base_/schedules/cyclic-40e.py",
    "../_base_/default_runtime.py",
]
