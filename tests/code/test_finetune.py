"""Unit tests for reference.finetune: masking, bad input, LoRA sizes, training, adapters, scoring.

Most tests use a tiny randomly initialised Llama with SmolLM2's tokenizer (fast, and
the architecture is the same); a few use the real SmolLM2-135M where the numbers matter
(trainable-parameter counts, a three-step training run).
"""

from __future__ import annotations

import json
import math

import pytest
import torch

from reference import finetune as ft
from reference.datasets import load_finetune
from reference.datasets.sets import REFUSAL, parse_cited_answer
from reference.embeddings import FakeEmbedder
from reference.errors import InputError
from reference.hf import load_hf_model


@pytest.fixture(scope="module")
def smol():
    return load_hf_model()


@pytest.fixture(scope="module")
def tok(smol):
    return smol[1]


def tiny_llama(hidden: int = 32, layers: int = 2, seed: int = 0):
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    cfg = LlamaConfig(vocab_size=49152, hidden_size=hidden, intermediate_size=2 * hidden,
                      num_hidden_layers=layers, num_attention_heads=4, num_key_value_heads=2,
                      max_position_embeddings=256, tie_word_embeddings=True)
    return LlamaForCausalLM(cfg).eval()


def conv(user: str, reply: str, system: str | None = "Be brief.") -> dict:
    msgs = ([{"role": "system", "content": system}] if system else []) + [
        {"role": "user", "content": user}, {"role": "assistant", "content": reply}]
    return {"messages": msgs}


TINY = [conv("Capital of France?", "Paris."), conv("2+2?", "4"), conv("Colour of the sky?", "Blue."),
        conv("Opposite of hot?", "Cold.")]


# ----------------------------------------------------------------------- formatting
def test_masking_is_exact_on_a_tiny_example(tok):
    msgs = TINY[0]["messages"]
    enc = ft.encode_chat(msgs, tok)
    prompt = tok.apply_chat_template(msgs[:2], add_generation_prompt=True, tokenize=False)
    n_prompt = len(tok(prompt, add_special_tokens=False)["input_ids"])
    reply = tok("Paris.", add_special_tokens=False)["input_ids"]
    im_end = tok.convert_tokens_to_ids("<|im_end|>")
    assert enc.labels == [-100] * n_prompt + reply + [im_end]
    assert enc.input_ids[n_prompt:] == reply + [im_end]
    # the ids are exactly the chat template of the whole conversation (minus its final newline)
    full = tok.apply_chat_template(msgs, tokenize=False)
    assert full.endswith("Paris.<|im_end|>\n")
    assert enc.input_ids == tok(full.removesuffix("\n"), add_special_tokens=False)["input_ids"]
    assert tok.decode([t for t in enc.labels if t != -100]) == "Paris.<|im_end|>"
    assert (enc.n_prompt, enc.n_target) == (n_prompt, len(reply) + 1)


def test_collate_pads_right_and_ignores_padding(tok):
    encs = [ft.encode_chat(e["messages"], tok) for e in TINY[:2]]
    batch = ft.collate(encs, pad_id=0)
    width = max(len(e.input_ids) for e in encs)
    assert batch["input_ids"].shape == (2, width)
    for row, e in enumerate(encs):
        n = len(e.input_ids)
        assert batch["attention_mask"][row].tolist() == [1] * n + [0] * (width - n)
        assert batch["labels"][row, n:].eq(-100).all()
        assert batch["labels"][row, :n].tolist() == e.labels


def test_real_dataset_encodes_within_the_default_limit(tok):
    encs = ft.encode_dataset(load_finetune("validation"), tok, max_length=384, reply_check=parse_cited_answer)
    assert len(encs) == 39
    assert all(e.n_target >= 10 and e.n_prompt > 100 for e in encs)


# ----------------------------------------------------------------------- bad input
@pytest.mark.parametrize(("examples", "message"), [
    ([], "empty"),
    ([{"prompt": "hi", "completion": "yo"}], "no 'messages'"),
    ([{"messages": []}], "no messages"),
    ([{"messages": [{"role": "user", "content": "hi"}]}], "last message must be the assistant"),
    ([{"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "  "}]}], "empty"),
    ([{"messages": [{"role": "robot", "content": "hi"}, {"role": "assistant", "content": "x"}]}],
     "role 'robot'"),
    ([{"messages": [{"role": "system", "content": "s"}, {"role": "assistant", "content": "x"}]}], "no user"),
    ("just a string", "not a single string"),
])
def test_malformed_examples_are_refused_before_training(tok, examples, message):
    # base_model=None: if validation did not stop it first, attaching LoRA would fail differently
    with pytest.raises(ft.FinetuneDataError, match=message):
        ft.train_lora(None, tok, examples, cfg=ft.LoraTrainConfig(max_steps=1), progress=False)


def test_error_names_the_bad_example(tok):
    data = [TINY[0], {"id": "ex-7", "messages": [{"role": "user", "content": "hi"}]}]
    with pytest.raises(ft.FinetuneDataError, match=r"example 1 \(ex-7\)"):
        ft.validate_examples(data)


def test_wrong_reply_schema_is_refused(tok):
    good = load_finetune("train")[0].model_dump()
    bad = json.loads(json.dumps(good))
    bad["messages"][2]["content"] = '{"answer": "x", "sources": ["doc-a"], "confidence": "high"}'
    ft.validate_examples([good], reply_check=parse_cited_answer)
    with pytest.raises(ft.FinetuneDataError, match="does not match the target schema"):
        ft.train_lora(None, tok, [good, bad], cfg=ft.LoraTrainConfig(max_steps=1),
                      reply_check=parse_cited_answer, progress=False)


def test_too_long_sequence_names_example_and_length(tok):
    long = conv("word " * 200, "ok")
    n = len(ft.encode_chat(long["messages"], tok).input_ids)
    with pytest.raises(ft.SequenceTooLongError, match=rf"max_length=64: example 1: {n} tokens"):
        ft.train_lora(None, tok, [TINY[0], long], cfg=ft.LoraTrainConfig(max_length=64, max_steps=1),
                      progress=False)


@pytest.mark.parametrize("kwargs", [{"rank": 0}, {"dropout": 1.5}, {"target_modules": ()}, {"batch_size": 0},
                                    {"device": "tpu"}, {"learning_rate": 0}, {"precision": "fp8"}])
def test_bad_config_is_refused(kwargs):
    with pytest.raises(InputError, match="bad LoRA configuration"):
        ft.LoraTrainConfig(**kwargs)


def test_unknown_target_module_lists_the_real_ones():
    with pytest.raises(InputError, match=r"\['attn'\].*q_proj"):
        ft.attach_lora(tiny_llama(), ft.LoraTrainConfig(target_modules=("attn",)))


def test_device_choice():
    assert str(ft.pick_device("cpu")) == "cpu"
    assert ft.pick_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    if not torch.cuda.is_available():
        with pytest.raises(InputError, match="no CUDA"):
            ft.pick_device("cuda")
        with pytest.raises(InputError, match="bf16"):
            ft.train_lora(tiny_llama(), load_hf_model()[1], TINY, cfg=ft.LoraTrainConfig(precision="bf16"))


# ----------------------------------------------------------------------- LoRA sizes
@pytest.mark.parametrize(("rank", "targets"), [(4, ft.ATTENTION_TARGETS), (8, ft.ATTENTION_TARGETS),
                                               (8, ft.ALL_LINEAR_TARGETS)])
def test_trainable_parameter_counts_on_smollm2(smol, rank, targets):
    base = smol[0]
    shapes = {"q_proj": (576, 576), "k_proj": (576, 192), "v_proj": (576, 192), "o_proj": (576, 576),
              "gate_proj": (576, 1536), "up_proj": (576, 1536), "down_proj": (1536, 576)}
    expected = 30 * sum(rank * (shapes[t][0] + shapes[t][1]) for t in targets)
    model = ft.attach_lora(base, ft.LoraTrainConfig(rank=rank, target_modules=targets))
    trainable, total = ft.count_parameters(model)
    assert trainable == expected
    assert total == base.num_parameters() + expected
    assert ft.count_parameters(base)[0] == base.num_parameters()  # the shared base is untouched


# ----------------------------------------------------------------------- training
def test_three_step_training_smoke(smol):
    base, tok = smol
    before = {n: p.detach().clone() for n, p in base.named_parameters() if "layers.0." in n}
    cfg = ft.LoraTrainConfig(rank=4, max_length=96, batch_size=2, max_steps=3, learning_rate=2e-3,
                             warmup_steps=1, eval_every=3)
    result = ft.train_lora(base, tok, TINY, TINY[:2], cfg, progress=False)
    assert result.steps == 3 and result.device == "cpu" and result.precision == "float32"
    assert all(math.isfinite(h["train_loss"]) for h in result.history)
    assert "val_loss" in result.history[-1] and result.best_step in (0, 3)
    assert result.train_tokens > 0 and "3 steps on cpu" in result.summary()
    lora_b = [p for n, p in result.model.named_parameters() if "lora_B" in n]
    assert len(lora_b) == 4 * 30  # q, k, v, o in each of the 30 layers
    if result.best_step == 3:  # B starts at zero; kept weights from step 3 have moved
        assert any(p.abs().sum() > 0 for p in lora_b)
    for n, p in base.named_parameters():  # the shared model was copied, not trained
        if n in before:
            assert torch.equal(p, before[n])


def test_training_is_deterministic_and_stops_early():
    _, tok = load_hf_model()
    model = tiny_llama()
    cfg = ft.LoraTrainConfig(rank=2, max_length=96, batch_size=2, max_steps=12, learning_rate=0.5,
                             warmup_steps=1, eval_every=1, patience=2)
    a = ft.train_lora(model, tok, TINY, TINY[2:], cfg, progress=False)
    b = ft.train_lora(model, tok, TINY, TINY[2:], cfg, progress=False)
    assert [h["train_loss"] for h in a.history] == [h["train_loss"] for h in b.history]
    assert a.stopped_early and a.steps < 12  # a learning rate of 0.5 makes validation loss climb
    assert a.best_val_loss <= min(h["val_loss"] for h in a.history)


# ----------------------------------------------------------------------- rehearsal
def test_rehearsal_examples_are_the_models_own_complete_replies(smol):
    model, tok = smol
    prompts = load_finetune("rehearsal")[:3]
    extra = ft.rehearsal_examples(model, tok, prompts, max_new_tokens=48)
    own = ft.generate_replies(model, tok, [p.messages for p in prompts], max_new_tokens=48)
    complete = [(p, g) for p, g in zip(prompts, own) if g.text and g.finish_reason == "stop"]
    assert all(g.completion_tokens == 48 for g in own if g.finish_reason == "length")
    assert complete, "SmolLM2 should finish at least one short general answer in 48 tokens"
    assert [e["messages"][-1]["content"] for e in extra] == [g.text for _, g in complete]
    assert [e["messages"][0]["content"] for e in extra] == [p.prompt for p, _ in complete]
    assert [e["id"] for e in extra] == [p.id for p, _ in complete]
    with pytest.raises(InputError, match="raise max_new_tokens"):
        ft.rehearsal_examples(model, tok, prompts, max_new_tokens=1)


def test_rehearsal_drops_cut_off_and_empty_replies(monkeypatch):
    fake = [ft.Generation("Paris.", 3, 0.1), ft.Generation("One two three four", 4, 0.1, "length"),
            ft.Generation("", 1, 0.1)]
    monkeypatch.setattr(ft, "generate_replies", lambda *a, **k: fake)
    prompts = [[{"role": "user", "content": q}] for q in ("Capital of France?", "Count.", "Nothing?")]
    extra = ft.rehearsal_examples(None, None, prompts, max_new_tokens=4)
    assert extra == [{"id": "rehearsal-01", "messages": [{"role": "user", "content": "Capital of France?"},
                                                       {"role": "assistant", "content": "Paris."}]}]


@pytest.mark.parametrize(("prompts", "message"), [
    ([], "at least one prompt"),
    ([[{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"}]], "must end with a user"),
    ([{"id": "x"}], "no 'messages'"),
])
def test_bad_rehearsal_prompts_are_refused(prompts, message):
    with pytest.raises((InputError, ft.FinetuneDataError), match=message):
        ft.rehearsal_examples(None, None, prompts)


def test_rehearsal_examples_skip_the_reply_check_but_not_the_shape_checks(tok):
    task = load_finetune("train")[:2]
    plain = [conv("Capital of France?", "Paris.", system=None)]
    cfg = ft.LoraTrainConfig(rank=2, max_length=512, batch_size=2, max_steps=1, warmup_steps=1)
    with pytest.raises(ft.FinetuneDataError, match="target schema"):
        ft.train_lora(tiny_llama(), tok, task + plain, cfg=cfg, reply_check=parse_cited_answer, progress=False)
    result = ft.train_lora(tiny_llama(), tok, task, cfg=cfg, reply_check=parse_cited_answer, rehearsal=plain,
                           progress=False)
    assert (result.examples, result.rehearsal_examples) == (3, 1)
    with pytest.raises(ft.FinetuneDataError, match="last message must be the assistant"):
        ft.train_lora(tiny_llama(), tok, task, cfg=cfg, reply_check=parse_cited_answer,
                      rehearsal=[{"messages": [{"role": "user", "content": "Hi"}]}], progress=False)


# ----------------------------------------------------------------------- adapters
def _logits(model, ids):
    with torch.no_grad():
        return model(input_ids=ids).logits


def test_save_load_round_trip_and_merge(tmp_path):
    _, tok = load_hf_model()
    base = tiny_llama()
    cfg = ft.LoraTrainConfig(rank=2, max_length=96, batch_size=2, max_steps=2, learning_rate=1e-2,
                             warmup_steps=1)
    trained = ft.train_lora(base, tok, TINY, cfg=cfg, progress=False).model
    ids = torch.tensor([ft.encode_chat(TINY[0]["messages"], tok).input_ids])
    folder = ft.save_adapter(trained, tmp_path / "adapter", extra={"note": "test"})
    meta = json.loads((folder / ft.ADAPTER_META_FILE).read_text())
    assert meta["fingerprint"]["hidden_size"] == 32 and meta["note"] == "test"
    assert json.loads((folder / "adapter_config.json").read_text())["base_model_name_or_path"] == \
        "smollm2-135m-instruct"
    reloaded = ft.load_adapter(base, folder)
    assert torch.allclose(_logits(trained, ids), _logits(reloaded, ids), atol=1e-6)
    # the adapter does something
    assert not torch.allclose(_logits(base, ids), _logits(reloaded, ids), atol=1e-4)
    merged = ft.merge_adapter(reloaded)
    assert not hasattr(merged, "peft_config")
    assert torch.allclose(_logits(merged, ids), _logits(reloaded, ids), atol=1e-4)
    out = ft.generate_replies(reloaded, tok, [TINY[0]["messages"]], max_new_tokens=4)
    assert out[0].completion_tokens <= 4


def test_generation_pads_by_hand_when_the_tokenizer_has_no_pad_token():
    import copy

    _, tok = load_hf_model()
    bare = copy.deepcopy(tok)
    bare.pad_token = None  # GGUF-loaded tokenizers may come without one
    model = tiny_llama()
    prompts = [TINY[0]["messages"], TINY[1]["messages"]]
    with_pad = ft.generate_replies(model, tok, prompts, max_new_tokens=3)
    without = ft.generate_replies(model, bare, prompts, max_new_tokens=3)
    assert [g.text for g in with_pad] == [g.text for g in without]
    assert all(g.completion_tokens <= 3 for g in without)


def test_adapter_for_another_base_model_is_refused(tmp_path):
    small = tiny_llama(hidden=32)
    other = tiny_llama(hidden=48)
    folder = ft.save_adapter(ft.attach_lora(small, ft.LoraTrainConfig(rank=2)), tmp_path / "a")
    with pytest.raises(ft.AdapterMismatchError, match="hidden_size: adapter 32 vs model 48"):
        ft.load_adapter(other, folder)
    (folder / ft.ADAPTER_META_FILE).unlink()  # without our note, the shapes still give it away
    with pytest.raises(ft.AdapterMismatchError, match="different base model"):
        ft.load_adapter(other, folder)
    with pytest.raises(ft.AdapterMismatchError, match="does not have"):
        ft.load_adapter(tiny_llama(layers=1), folder)
    with pytest.raises(ft.AdapterMismatchError, match="not a saved adapter"):
        ft.load_adapter(small, tmp_path)


# ----------------------------------------------------------------------- scoring
def test_scoring_of_gold_invalid_and_refusal_replies():
    test = load_finetune("test")
    answerable = next(e for e in test if e.meta.answerable)
    unanswerable = next(e for e in test if not e.meta.answerable)
    gold = ft.score_reply(answerable.messages[2].content, answerable)
    assert gold.valid and gold.citation_exact and gold.keyword_hit and gold.citation_f1 == 1.0
    bad = ft.score_reply("The answer is 42.", answerable)
    assert not bad.valid and "not JSON" in bad.error and bad.citation_f1 == 0.0
    refusal = json.dumps({"answer": REFUSAL, "citations": [], "confidence": "low"})
    assert ft.score_reply(refusal, unanswerable).refusal_correct
    assert not ft.score_reply(refusal, answerable).refusal_correct
    m = ft.task_metrics([answerable.messages[2].content, refusal, refusal],
                        [answerable, unanswerable, answerable])
    assert m["validity"] == 1.0 and m["refusal_accuracy"] == 1.0 and m["false_refusal_rate"] == 0.5
    assert m["keyword_accuracy"] == 0.5
    with pytest.raises(InputError):
        ft.task_metrics(["x"], [])


def test_sanity_pass_rate():
    prompts = load_finetune("sanity")[:2]
    assert ft.sanity_pass_rate(["It is Paris.", "no idea"], prompts) == 0.5


def test_embedding_intent_classifier():
    clf = ft.EmbeddingIntentClassifier(FakeEmbedder(dim=64))
    with pytest.raises(InputError, match="fit"):
        clf.predict(["x"])
    with pytest.raises(InputError, match="two different labels"):
        clf.fit(["a", "b"], ["x", "x"])
    clf.fit(["reset my vpn password", "hello how are you", "vpn keeps dropping", "good morning friend"],
            ["it", "smalltalk", "it", "smalltalk"])
    assert clf.predict(["my vpn dropped again", "hello friend"]) == ["it", "smalltalk"]
