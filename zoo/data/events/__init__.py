"""Event-camera data: native readers, event-to-frame integration, frame cache, data sets."""

from .aedat import read_aedat2, read_aedat31
from .base import EventFrameDataset
from .cifar10_dvs import CIFAR10DVS, read_cifar10_dvs
from .gesture import DVS128Gesture, read_labels_csv
from .integrate import Integration, integrate
from .nmnist import NMNIST, read_nmnist_bin
from .stream import EVENT_DTYPE, make_events

__all__ = ["CIFAR10DVS", "DVS128Gesture", "EVENT_DTYPE", "EventFrameDataset", "Integration", "NMNIST",
           "integrate", "make_events", "read_aedat2", "read_aedat31", "read_cifar10_dvs",
           "read_labels_csv", "read_nmnist_bin"]
