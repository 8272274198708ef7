"""Causal-LM backend: transformers + peft LoRA; the label is read from the next-token logits of two
label tokens (" A" / " B" for pairwise, " True" / " False" for binary).

Chat models get their chat template; base models get the raw prompt. Training minimises the
cross-entropy between the softmax over the two label logits and the (soft) target, so the model is
never asked to produce free text. Defaults follow the published setup (LoRA r=32, lr 1e-4, 5 epochs,
batch 32). ``lora_alpha`` defaults to ``2 * lora_r`` (64 at the published r=32), so the LoRA scaling
alpha/r stays 2 when only the rank is changed. On CUDA it trains in bf16; on CPU in float32.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from aar.w2s.models.base import W2SModel
from aar.w2s.models.head import Loss, logconf_alpha, logconf_target
from aar.w2s.testbeds.base import Format, Item

PAIRWISE_TEMPLATE = "{prompt}\n\nAnswer A:\n{a}\n\nAnswer B:\n{b}\n\nWhich answer is better? Reply with A or B."
BINARY_TEMPLATE = (
    "Question:\n{prompt}\n\nProposed answer:\n{a}\n\nIs the proposed answer correct? Reply with True or False."
)
LABEL_WORDS = {"pairwise": (" A", " B"), "binary": (" False", " True")}


class CausalLMModel(W2SModel):
    """A causal LM scored on two label tokens, optionally LoRA-fine-tuned."""

    name = "causal_lm"

    def __init__(
        self,
        fmt: Format,
        model: str = "Qwen/Qwen3-4B-Base",
        lora_r: int = 32,
        lora_alpha: int | None = None,
        lr: float = 1e-4,
        epochs: int = 5,
        batch_size: int = 32,
        max_length: int = 1024,
        chat_template: bool | None = None,
        device: str | None = None,
        tokenizer: str | None = None,
        use_vllm: bool = False,
    ) -> None:
        super().__init__(fmt)
        self.model_name, self.lora_r = model, lora_r
        # alpha follows r unless given: a fixed alpha=64 made alpha/r (the LoRA scaling, which multiplies
        # every adapter update) 8 at r=8 and 16 at r=4, an effective step size at which training oscillated.
        self.lora_alpha = 2 * lora_r if lora_alpha is None else lora_alpha
        self.lr, self.epochs, self.batch_size, self.max_length = lr, epochs, batch_size, max_length
        self._chat = chat_template
        self._device = device
        self.tokenizer_name = tokenizer or model
        self.use_vllm = use_vllm
        self._llm: Any = None
        self._model: Any = None
        self._tok: Any = None
        self.losses: list[float] = []

    # ------------------------------------------------------------------ loading
    def _load(self) -> None:
        if self._model is not None:
            return
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        self.device = self._device or ("cuda" if torch.cuda.is_available() else "cpu")
        dtype = torch.bfloat16 if self.device.startswith("cuda") else torch.float32
        try:
            self._tok = AutoTokenizer.from_pretrained(self.tokenizer_name)
            self._model = AutoModelForCausalLM.from_pretrained(self.model_name, dtype=dtype).to(self.device)  # type: ignore[arg-type]
        except OSError as exc:
            raise ValueError(f"cannot load causal LM {self.model_name!r} (no network or local copy?): {exc}") from None
        if self._tok.eos_token is None and self._tok.sep_token is not None:  # BERT-style tokenizers
            self._tok.eos_token = self._tok.sep_token
        if self._tok.pad_token is None:
            self._tok.pad_token = self._tok.eos_token or self._tok.unk_token
        self._tok.padding_side = "left"  # the label is read at the last position
        if self._chat is None:
            self._chat = bool(getattr(self._tok, "chat_template", None)) and "base" not in self.model_name.lower()
        ids = [self._tok.encode(w, add_special_tokens=False)[-1] for w in LABEL_WORDS[self.fmt]]
        if ids[0] == ids[1]:
            raise ValueError(f"label words {LABEL_WORDS[self.fmt]} map to the same token in {self.model_name}")
        self.label_ids = ids

    def prompt_text(self, item: Item) -> str:
        template = PAIRWISE_TEMPLATE if self.fmt == "pairwise" else BINARY_TEMPLATE
        body = template.format(prompt=item.prompt, a=item.answer_a, b=item.answer_b or "")
        if self._chat:
            return (
                self._tok.apply_chat_template(
                    [{"role": "user", "content": body}], tokenize=False, add_generation_prompt=True
                )
                + "Answer:"
            )
        return body + "\nAnswer:"

    def _label_logits(self, items: Sequence[Item]):  # type: ignore[no-untyped-def]
        batch = self._tok(
            [self.prompt_text(it) for it in items],
            return_tensors="pt",
            padding=True,
            truncation=True,
            max_length=self.max_length,
        ).to(self.device)
        logits = self._model(**batch).logits[:, -1, :]
        return logits[:, self.label_ids].float()

    # ------------------------------------------------------------------ API
    def fit(self, items, targets, *, weights=None, loss: Loss = "bce", seed=0):  # type: ignore[no-untyped-def]
        import torch
        from peft import LoraConfig, get_peft_model

        self._load()
        torch.manual_seed(seed)
        if not hasattr(self._model, "peft_config"):
            config = LoraConfig(
                r=self.lora_r,
                lora_alpha=self.lora_alpha,
                lora_dropout=0.0,
                target_modules="all-linear",
                task_type="CAUSAL_LM",
            )
            self._model = get_peft_model(self._model, config)
        opt = torch.optim.AdamW([p for p in self._model.parameters() if p.requires_grad], lr=self.lr)
        t = torch.tensor(np.clip(targets, 0, 1), dtype=torch.float32)
        w = torch.tensor(np.ones(len(items)) if weights is None else weights, dtype=torch.float32)
        gen = torch.Generator().manual_seed(seed)
        steps = self.epochs * math.ceil(len(items) / self.batch_size)
        self._model.train()
        for step in range(steps):
            if step % math.ceil(len(items) / self.batch_size) == 0:
                order = torch.randperm(len(items), generator=gen)
            k = step % math.ceil(len(items) / self.batch_size)
            idx = order[k * self.batch_size : (k + 1) * self.batch_size]
            log_probs = torch.log_softmax(self._label_logits([items[i] for i in idx]), dim=-1).cpu()
            target = t[idx]
            if loss == "logconf":
                target = logconf_target(log_probs[:, 1].exp(), target, logconf_alpha(step, steps))
            per_item = -(target * log_probs[:, 1] + (1 - target) * log_probs[:, 0])
            batch_loss = (per_item * w[idx]).sum() / w[idx].sum()
            opt.zero_grad()
            batch_loss.backward()
            opt.step()
            self.losses.append(float(batch_loss.detach()))
        self._model.eval()
        return self

    def train_critic(
        self, items: Sequence[Item], weak_labels: np.ndarray, *, seed: int = 0, max_steps: int | None = None
    ) -> None:
        """GRPO critic training on weak labels (see ``aar.w2s.models.critic_grpo``)."""
        from aar.w2s.models.critic_grpo import train_critic

        train_critic(self, items, weak_labels, seed=seed, max_steps=max_steps)

    def predict_proba(self, items: Sequence[Item]) -> np.ndarray:
        import torch

        self._load()
        if self.use_vllm:
            return self._predict_vllm(items)
        out = []
        with torch.inference_mode():
            for start in range(0, len(items), self.batch_size):
                logits = self._label_logits(items[start : start + self.batch_size])
                out.append(torch.softmax(logits, dim=-1)[:, 1].cpu().numpy())
        return np.concatenate(out).astype(np.float64) if out else np.zeros(0)

    def zero_shot(self, items: Sequence[Item]) -> np.ndarray:
        """The untrained model's label-token probabilities (before any LoRA training)."""
        if self._model is not None and hasattr(self._model, "peft_config"):
            with self._model.disable_adapter():
                return self.predict_proba(items)
        return self.predict_proba(items)

    def _predict_vllm(self, items: Sequence[Item]) -> np.ndarray:
        """Label probabilities from vLLM (one constrained token and its logprobs), with the LoRA adapter if any."""
        try:
            from vllm import LLM, SamplingParams
            from vllm.lora.request import LoRARequest
        except ImportError:
            raise ValueError("use_vllm needs the gpu extra: pip install 'aar[gpu]'") from None
        import tempfile

        lora = None
        if hasattr(self._model, "peft_config"):
            adapter_dir = tempfile.mkdtemp(prefix="aar-lora-")
            self._model.save_pretrained(adapter_dir)
            lora = LoRARequest("aar", 1, adapter_dir)
        if self._llm is None:
            self._llm = LLM(
                model=self.model_name,
                tokenizer=self.tokenizer_name,
                enable_lora=lora is not None,
                max_lora_rank=max(8, self.lora_r),
                max_model_len=self.max_length + 8,
            )
        params = SamplingParams(max_tokens=1, logprobs=2, allowed_token_ids=list(self.label_ids), temperature=0.0)
        outputs = self._llm.generate([self.prompt_text(it) for it in items], params, lora_request=lora)
        probs = []
        for out in outputs:
            top = out.outputs[0].logprobs[0]
            neg, pos = (top[i].logprob if i in top else -1e9 for i in self.label_ids)
            probs.append(1.0 / (1.0 + np.exp(neg - pos)))
        return np.array(probs, dtype=np.float64)
