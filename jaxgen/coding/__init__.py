"""Lossless compression with a model's conditionals: an integer arithmetic coder
(`arithmetic`) driven by an autoregressive model's p(x_i | x_<i) (`codec`)."""
