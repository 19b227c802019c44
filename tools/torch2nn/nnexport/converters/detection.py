"""Detection post-processing nnkit does not express: a model calling these
is refused with the reason (registry.refuse), at the first call."""

from ..registry import refuse

try:
    from torchvision.ops import boxes as tv_boxes
except ImportError:  # torchvision is optional for the Python API
    tv_boxes = None

# Faster/Mask/Keypoint R-CNN, RetinaNet, FCOS and SSD filter their boxes
# through NMS in torchvision.ops.boxes.
refuse(*(getattr(tv_boxes, n, None) for n in ("batched_nms", "nms")),
       why="non-maximum suppression keeps a data-dependent number of boxes and the "
           "post-processing branches on tensor values (data-dependent control flow), "
           "which a fixed graph cannot express; export the backbone instead (e.g. "
           "torchvision's resnet_fpn_backbone)")
