"""torch.hub entry points for snnzoo.

``torch.hub.load("<repo>", NAME, pretrained=False, **kwargs)`` builds a registered spiking
architecture. Each registered architecture gets one entry point here, generated from the zoo's
registry so that the two never disagree.
"""

dependencies = ["torch", "torchvision", "timm", "huggingface_hub", "safetensors", "numpy", "tqdm"]
