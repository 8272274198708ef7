"""GRPO critic training for the causal_lm backend (TRL's ``GRPOTrainer``).

The model writes a short critique of the item that ends in a verdict ("Verdict: A" / "Verdict: B",
or True / False for binary items). The reward is +1 when the verdict agrees with the weak label,
-1 when it contradicts it, and -0.5 when no verdict can be parsed. Training updates the model's
LoRA adapter in place; predictions afterwards are read from the label-token logits as usual.
"""

from __future__ import annotations

import re
import tempfile
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from aar.w2s.testbeds.base import Item

if TYPE_CHECKING:
    from aar.w2s.models.causal_lm import CausalLMModel

CRITIC_SUFFIX = (
    "\n\nFirst write a brief critique (at most three sentences), then finish with a line 'Verdict: {labels}'."
)
VERDICT = re.compile(r"verdict\s*:\s*(A|B|True|False)\b", re.IGNORECASE)


def parse_verdict(text: str, fmt: str) -> int | None:
    """1 for B / True, 0 for A / False, None when the completion states no verdict."""
    found = VERDICT.findall(text)
    if not found:
        return None
    word = found[-1].lower()
    if fmt == "pairwise":
        return {"a": 0, "b": 1}.get(word)
    return {"false": 0, "true": 1}.get(word)


def verdict_reward(completions: list, weak_label: list[int], fmt: list[str], **_: object) -> list[float | None]:
    """GRPO reward: agreement of the completion's verdict with the weak label."""
    rewards: list[float | None] = []
    for completion, label, f in zip(completions, weak_label, fmt, strict=True):
        text = completion if isinstance(completion, str) else " ".join(m.get("content", "") for m in completion)
        verdict = parse_verdict(text, f)
        rewards.append(-0.5 if verdict is None else (1.0 if verdict == label else -1.0))
    return rewards


def train_critic(
    model: CausalLMModel,
    items: Sequence[Item],
    weak_labels: np.ndarray,
    *,
    seed: int = 0,
    max_steps: int | None = None,
    num_generations: int = 4,
    max_completion_length: int = 96,
) -> None:
    """Run GRPO on ``items`` with rewards from ``weak_labels`` (hard 0/1), updating ``model`` in place."""
    try:
        from datasets import Dataset
        from peft import LoraConfig
        from trl import GRPOConfig, GRPOTrainer
    except ImportError:
        raise ValueError("critic training needs TRL and datasets: pip install 'aar[hf]'") from None

    model._load()
    labels = "A or B" if model.fmt == "pairwise" else "True or False"
    prompts = [model.prompt_text(it).removesuffix("Answer:") + CRITIC_SUFFIX.format(labels=labels) for it in items]
    data = Dataset.from_dict(
        {"prompt": prompts, "weak_label": [int(y) for y in weak_labels], "fmt": [model.fmt] * len(items)}
    )
    batch = max(num_generations, (min(model.batch_size, len(items)) // num_generations) * num_generations)
    steps = max_steps if max_steps is not None else model.epochs * max(1, len(items) // batch)
    config = GRPOConfig(
        output_dir=tempfile.mkdtemp(prefix="aar-grpo-"),
        max_steps=steps,
        learning_rate=model.lr,
        per_device_train_batch_size=batch,
        num_generations=num_generations,
        max_completion_length=max_completion_length,
        report_to="none",
        save_strategy="no",
        logging_steps=1,
        seed=seed,
        use_cpu=not str(model.device).startswith("cuda"),
        bf16=str(model.device).startswith("cuda"),
    )
    peft_config = None
    if not hasattr(model._model, "peft_config"):
        peft_config = LoraConfig(
            r=model.lora_r, lora_alpha=model.lora_alpha, target_modules="all-linear", task_type="CAUSAL_LM"
        )
    trainer = GRPOTrainer(
        model=model._model,
        reward_funcs=verdict_reward,
        args=config,
        train_dataset=data,
        processing_class=model._tok,
        peft_config=peft_config,
    )
    model._tok.padding_side = "left"
    trainer.train()
    model._model = trainer.model
    model._model.eval()
    model.losses += [float(h["loss"]) for h in trainer.state.log_history if "loss" in h]
