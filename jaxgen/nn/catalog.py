"""The networks `model.name` can name: registered with `jaxgen.kernel.registry`.

Each entry is the Flax module (imported when first built), the kinds of data it
accepts, and how fields it leaves to the data (event_shape, a sequence model's
max_len, an MLP's output width) are filled in.
"""

from __future__ import annotations

from jaxgen.kernel.registry import ModelSpec, event_shape_default, max_len_default, register_model


def _out_dim(kwargs, data):
    kwargs.setdefault("out_dim", data.event_shape[-1])
    return kwargs


_SEQUENCE_HINT = "Use ar_mlp, ar_rnn, wavenet or ar_transformer."

MODELS = {
    "mlp": ModelSpec("jaxgen.nn.mlp:TimeMLP", ("points",), _out_dim, "Use model.name=unet."),
    # points too: h x w x C maps such as a VQ-VAE's pre-quantised latents (data.keep_shape)
    "unet": ModelSpec("jaxgen.nn.unet:UNet", ("images", "points"), hint="Use model.name=mlp.",
                      expects="expects images or h x w x C maps (data.keep_shape)",
                      event_rank=3),
    "dit": ModelSpec("jaxgen.nn.dit:DiT", ("images", "points"), hint="Use model.name=mlp.",
                     expects="expects images or h x w x C maps (data.keep_shape)",
                     event_rank=3),
    "realnvp": ModelSpec("jaxgen.nn.flows:RealNVP"),
    "glow": ModelSpec("jaxgen.nn.flows:Glow"),
    "vae_mlp": ModelSpec("jaxgen.nn.vae:MLPVAE", defaults=event_shape_default),
    "vae_conv": ModelSpec("jaxgen.nn.vae:ConvVAE", ("images",), event_shape_default,
                          "Use model.name=vae_mlp."),
    "vqvae_conv": ModelSpec("jaxgen.nn.vae:VQVAEConv", ("images",), event_shape_default),
    "vqvae2_conv": ModelSpec("jaxgen.nn.vae:VQVAE2Conv", ("images",), event_shape_default),
    "gan_mlp": ModelSpec("jaxgen.nn.gan:MLPGAN", defaults=event_shape_default),
    "dcgan": ModelSpec("jaxgen.nn.gan:DCGAN", ("images",), event_shape_default,
                       "Use model.name=gan_mlp."),
    "biggan": ModelSpec("jaxgen.nn.biggan:BigGAN", ("images",), event_shape_default),
    "sngan": ModelSpec("jaxgen.nn.sngan:SNGAN", ("images",), event_shape_default,
                       "Use model.name=gan_mlp."),
    "progan": ModelSpec("jaxgen.nn.progan:ProGAN", ("images",), event_shape_default,
                        "Use model.name=gan_mlp."),
    "pix2pix_unet": ModelSpec("jaxgen.nn.image2image:Pix2Pix", ("images",),
                              event_shape_default, expects="translates images"),
    "cyclegan": ModelSpec("jaxgen.nn.image2image:CycleGAN", ("images",), event_shape_default,
                          expects="translates images"),
    "ar_mlp": ModelSpec("jaxgen.nn.autoregressive:FiniteMemoryMLP",
                        ("points", "images", "tokens"), max_len_default),
    "ar_rnn": ModelSpec("jaxgen.nn.autoregressive:RNN", ("points", "images", "tokens")),
    "wavenet": ModelSpec("jaxgen.nn.autoregressive:WaveNet", ("points", "images", "tokens")),
    "pixelcnn": ModelSpec("jaxgen.nn.autoregressive:PixelCNN", ("images",),
                          hint=_SEQUENCE_HINT, expects="models images"),
    "ar_transformer": ModelSpec("jaxgen.nn.autoregressive:CausalTransformer",
                                ("points", "images", "tokens"), max_len_default),
}

for _name, _spec in MODELS.items():
    register_model(_name, _spec)
