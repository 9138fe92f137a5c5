"""The file names of a converted COP-GEN folder (the denoiser's are the engine's own)."""

from .registry import IMAGE_MODALITIES


def encoder_name(key):
    return f"vae_encoder.{key}.onnx"


def decoder_name(key):
    return f"vae_decoder.{key}.onnx"


def vae_graph_files():
    """{plan graph name: file name} of every VAE graph, in network order."""
    graphs = {}
    for key in IMAGE_MODALITIES:
        graphs[f"vae_encoder.{key}"] = encoder_name(key)
        graphs[f"vae_decoder.{key}"] = decoder_name(key)
    return graphs
