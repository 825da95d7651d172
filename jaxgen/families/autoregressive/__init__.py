"""Autoregressive models: exact likelihood by the chain rule over pixels, codes or
sequence values (finite-memory MLP, RNN, WaveNet, PixelCNN, causal transformer), and
lossless compression with their conditionals (`jaxgen compress` / `decompress`)."""

from jaxgen.families.autoregressive import commands
from jaxgen.families.autoregressive.config import ARSample, ARSettings
from jaxgen.kernel.registry import Command, ObjectiveSpec, register_command, register_objective

register_objective(ObjectiveSpec(
    "autoregressive", "jaxgen.families.autoregressive.objective:make", settings=ARSettings,
    sample=ARSample, kinds=("points", "images", "tokens"),
    summary="an autoregressive prior"))
register_command(Command("compress", "lossless compression with an autoregressive model",
                         commands.configure_compress, commands.compress))
register_command(Command("decompress", "decode a `jaxgen compress` file",
                         commands.configure_decompress, commands.decompress))
