"""torch.hub entry points for snnzoo.

``torch.hub.load("snnzoo/snnzoo", NAME, pretrained=False, **kwargs)`` builds a registered spiking
architecture; ``pretrained=True`` loads its first published SNN-trained checkpoint and
``pretrained="TAG"`` the checkpoint ``NAME.TAG`` (``torch.hub.list`` names the architectures,
``zoo.list_models(pretrained=True)`` the checkpoints). Each registered architecture gets one entry
point here, generated from the zoo's registry so that the two never disagree. A tag is checked
as a name (``zoo.names.check_segment``) before it is looked up: it never becomes a path.
"""

dependencies = ["torch", "torchvision", "timm", "huggingface_hub", "safetensors", "numpy", "tqdm"]


def _entrypoint(arch):
    from zoo.names import check_segment
    from zoo.factory import create_model
    from zoo.registry import model_entrypoint

    def entrypoint(pretrained=False, **kwargs):
        if isinstance(pretrained, str):
            tag = check_segment(pretrained, "checkpoint tag (pretrained=)", f"torch.hub entry point {arch!r}")
            return create_model(f"{arch}.{tag}", pretrained=True, **kwargs)
        return create_model(arch, pretrained=bool(pretrained), **kwargs)

    entrypoint.__name__ = entrypoint.__qualname__ = arch
    entrypoint.__doc__ = (
        f"{(model_entrypoint(arch).__doc__ or arch).strip()}\n\n"
        "Args:\n"
        "    pretrained: False for random weights, True for the first published checkpoint of this\n"
        "        architecture, or a checkpoint tag (see zoo.list_models(pretrained=True)).\n"
        "    **kwargs: architecture arguments (T, neuron, num_classes, in_chans, backend, ...).\n"
    )
    return entrypoint


def _register_all():
    from zoo.registry import list_models

    for arch in list_models():
        globals()[arch] = _entrypoint(arch)


_register_all()
