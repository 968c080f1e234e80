"""The student and its initialisation from the teacher (a tiny random BERT, no weights needed)."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from edge_sentiment_convert.model import Student, StudentConfig, init_from_teacher  # noqa: E402

HIDDEN, HEADS, HEAD_DIM, FF = 64, 4, 16, 128


def tiny_bert(act: str = "gelu_pytorch_tanh") -> torch.nn.Module:
    torch.manual_seed(0)
    cfg = transformers.BertConfig(vocab_size=50, hidden_size=HIDDEN, num_hidden_layers=2,
                                  num_attention_heads=HEADS, intermediate_size=FF,
                                  max_position_embeddings=32, hidden_act=act)
    return transformers.BertModel(cfg).eval()


def encoder_output(student: Student, ids: torch.Tensor) -> torch.Tensor:
    x = student.emb_norm(student.word(ids) + student.position.weight[: ids.shape[1]])
    additive = torch.zeros((1, 1, 1, ids.shape[1]))
    for layer in student.layers:
        x = layer(x, additive)
    return x


@pytest.mark.parametrize("act, gelu", [("gelu_pytorch_tanh", "tanh"), ("gelu", "exact")])
def test_full_width_student_reproduces_the_teacher_encoder(act: str, gelu: str) -> None:
    bert = tiny_bert(act)
    student = Student(StudentConfig(vocab_size=50, hidden=HIDDEN, layers=2, heads=HEADS,
                                    intermediate=FF, max_len=32, gelu=gelu)).eval()
    init_from_teacher(student, bert)
    ids = torch.tensor([[2, 7, 9, 11, 3]])
    with torch.no_grad():
        want = bert(input_ids=ids).last_hidden_state
        got = encoder_output(student, ids)
    assert torch.allclose(got, want, atol=1e-5)


def test_pruned_student_keeps_the_strongest_heads_and_neurons() -> None:
    bert = tiny_bert()
    layer = bert.encoder.layer[1]  # a one-layer student takes the last teacher layer
    with torch.no_grad():  # make head 2 and neurons 5 and 100 the strongest
        layer.attention.self.value.weight[2 * HEAD_DIM:3 * HEAD_DIM] *= 10
        layer.intermediate.dense.weight[[5, 100]] *= 10
    student = Student(StudentConfig(vocab_size=50, hidden=HIDDEN, layers=1, heads=1,
                                    head_dim=HEAD_DIM, intermediate=2, max_len=32))
    assert student.cfg.attention_width == HEAD_DIM
    init_from_teacher(student, bert)
    mine = student.layers[0]
    head = slice(2 * HEAD_DIM, 3 * HEAD_DIM)
    assert torch.equal(mine.query.weight, layer.attention.self.query.weight[head])
    assert torch.equal(mine.attn_out.weight, layer.attention.output.dense.weight[:, head])
    assert torch.equal(mine.ff_in.weight, layer.intermediate.dense.weight[[5, 100]])
    assert torch.equal(mine.ff_out.weight, layer.output.dense.weight[:, [5, 100]])
    logits = student(torch.tensor([[2, 7, 3]]), torch.ones((1, 3), dtype=torch.long))
    assert logits.shape == (1, 3)


def test_unknown_gelu_is_refused() -> None:
    with pytest.raises(ValueError, match="gelu must be one of tanh, exact"):
        StudentConfig(vocab_size=50, gelu="relu")


@pytest.mark.parametrize("heads, head_dim, ff", [
    (2, 0, FF),  # head size 32, the teacher's is 16
    (HEADS + 1, HEAD_DIM, FF),  # more heads than the teacher has
    (HEADS, 0, 2 * FF),  # a wider feed-forward
])
def test_layers_that_do_not_fit_stay_untouched(heads: int, head_dim: int, ff: int) -> None:
    bert = tiny_bert()
    student = Student(StudentConfig(vocab_size=50, hidden=HIDDEN, layers=1, heads=heads,
                                    head_dim=head_dim, intermediate=ff, max_len=32))
    before = student.layers[0].query.weight.clone()
    init_from_teacher(student, bert)
    assert torch.equal(student.layers[0].query.weight, before)
    assert torch.equal(student.position.weight, bert.embeddings.position_embeddings.weight)
