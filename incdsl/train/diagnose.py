"""Why validation accuracy stays far below training accuracy: the causes a run can check itself.

No Keras here: it reads numbers the run already has. The batch-norm rule: a moving average with
momentum m (Keras' convention) keeps m**steps of its initial value after `steps` updates, so after
a run of fewer than about 3 / (1 - m) steps (300 for Keras' default 0.99) the moving statistics
are still mostly their start (mean 0, variance 1), unless they were recalibrated.
"""
from __future__ import annotations

GAP = 0.2  # "far below": validation accuracy this much (absolute) under training accuracy


def explain_gap(train_acc: float | None, val_acc: float | None, *, steps: int, bn_momenta: list[float],
                recalibrated: bool, val_images: int, classes: int) -> list[str]:
    """Lines to print at the end of a run (empty when validation is close to training, or either
    accuracy is unknown). `steps`: optimizer steps the weights have taken; `bn_momenta`: the BN
    layers' momenta (Keras convention); `val_images`: how many images validation saw."""
    if train_acc is None or val_acc is None or train_acc - val_acc < GAP:
        return []
    lines = [f"warning: validation accuracy {val_acc:.4f} is far below training accuracy {train_acc:.4f}; "
             "likely causes:"]
    if bn_momenta and not recalibrated:
        m = max(bn_momenta)
        left = m ** steps
        if left > 0.05:
            lines.append(
                f"- batch norm: {len(bn_momenta)} layers average their statistics with momentum up to {m:g}, "
                         f"about {1 / (1 - m):.0f} steps, and the weights took {steps} steps: {left:.0%} of "
                         f"each moving "
                         "average is still its initial value. Keep --bn-recalibrate on (the default)"
                         + (", or give the spec bn_momentum=0.9" if m > 0.9 else ", or train for more steps"))
    per_class = val_images / max(classes, 1)
    if val_images < 50 or per_class < 10:
        lines.append(f"- validation has {val_images} images ({per_class:.1f} per class): one image moves "
                     f"its accuracy by "
                     f"{1 / max(val_images, 1):.1%}; use more images or a larger --val-split")
    if len(lines) == 1:
        lines.append(
            "- overfitting: the network fits the training images but not others. More data, augmentation, "
                     "weight decay (--weight-decay, or weight_decay= in the spec) or fewer epochs help")
    return lines
