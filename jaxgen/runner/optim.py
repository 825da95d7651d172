"""Optimizers from config: Adam/AdamW/RMSProp/SGD, linear warmup + cosine, constant or linear
decay, global-norm clipping."""

from __future__ import annotations

import ml_collections
import optax

_KEYS = ("name", "learning_rate", "b1", "b2", "eps", "weight_decay", "momentum", "schedule",
         "warmup_steps", "end_lr_factor", "decay_steps", "grad_clip")


def player_config(optim_config: ml_collections.ConfigDict, player: str) -> dict:
    """The optimizer settings of one player: `optim.*`, overridden by `optim.players.<player>.*`."""
    cfg = {k: optim_config.get(k, 0.0) if k == "momentum" else optim_config[k] for k in _KEYS}
    overrides = optim_config.get("players", {}) or {}
    if player in overrides:
        for k, v in overrides[player].items():
            if k not in cfg:
                raise ValueError(f"optim.players.{player}.{k} is not an optimizer setting; "
                                 f"valid: {', '.join(_KEYS)}.")
            cfg[k] = v
    return cfg


def learning_rate_schedule(cfg: dict, total_steps: int) -> optax.Schedule:
    lr, warmup = float(cfg["learning_rate"]), int(cfg["warmup_steps"])
    total_steps = int(cfg.get("decay_steps") or 0) or total_steps
    if cfg["schedule"] == "constant":
        decay = optax.constant_schedule(lr)
    elif cfg["schedule"] == "cosine":
        decay = optax.cosine_decay_schedule(lr, max(1, total_steps - warmup),
                                            alpha=float(cfg["end_lr_factor"]))
    elif cfg["schedule"] == "linear":
        decay = optax.linear_schedule(lr, lr * float(cfg["end_lr_factor"]),
                                      max(1, total_steps - warmup))
    else:
        raise ValueError(f"optim.schedule={cfg['schedule']!r}; valid: cosine, constant, linear.")
    if warmup <= 0:
        return decay
    return optax.join_schedules([optax.linear_schedule(0.0, lr, warmup), decay], [warmup])


def make_optimizer(optim_config, player: str, total_steps: int) -> optax.GradientTransformation:
    cfg = player_config(optim_config, player)
    schedule = learning_rate_schedule(cfg, total_steps)
    if cfg["name"] == "adam":
        opt = optax.adam(schedule, b1=cfg["b1"], b2=cfg["b2"], eps=cfg["eps"])
    elif cfg["name"] == "adamw":
        opt = optax.adamw(schedule, b1=cfg["b1"], b2=cfg["b2"], eps=cfg["eps"],
                          weight_decay=cfg["weight_decay"])
    elif cfg["name"] == "rmsprop":  # WGAN (Arjovsky et al., 2017): RMSProp, lr 5e-5
        opt = optax.rmsprop(schedule, decay=cfg["b2"], eps=cfg["eps"],
                            momentum=cfg["momentum"] or None)
    elif cfg["name"] == "sgd":
        opt = optax.sgd(schedule, momentum=cfg["momentum"] or None)
    else:
        raise ValueError(f"optim.name={cfg['name']!r}; valid: adam, adamw, rmsprop, sgd.")
    # Always a chain (clip or identity, both stateless): the optimizer state has the same
    # structure whatever grad_clip is, so a resumed run may turn clipping on or off.
    clip = cfg["grad_clip"]
    return optax.chain(optax.clip_by_global_norm(clip) if clip and clip > 0
                       else optax.identity(), opt)


def learning_rates(optim_config, players, total_steps: int):
    """`rates(step) -> {player name: the learning rate of its last update in step `step`}`
    (1-based): each schedule, jitted once, at the update count optax had then (a player
    updating u times a step has made u * (step - 1) updates before it)."""
    import jax

    schedules = {p.name: (jax.jit(learning_rate_schedule(player_config(optim_config, p.name),
                                                         total_steps)),
                          int(p.updates_per_step)) for p in players}

    def rates(step: int) -> dict[str, float]:
        return {name: float(fn(u * int(step) - 1)) for name, (fn, u) in schedules.items()}
    return rates
