"""The chat-completions backend against a scripted local server."""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import pytest

from fake_chat_server import ChatServer, Reply, start_server
from retrieval.rerank.backends.base import BackendError, LogprobsUnavailable
from retrieval.rerank.backends.server import ServerBackend
from retrieval.rerank.chat import ImageRef, Prompt

PROMPT = Prompt("You rank images.", ["Query: dusk", ImageRef(0), ImageRef(1), "Answer:"])
MODEL = "Qwen/Qwen2.5-VL-3B-Instruct"


def completion(text: str, usage: dict[str, int] | None = None, logprobs: Any = None) -> dict[str, Any]:
    choice: dict[str, Any] = {"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}
    if logprobs is not None:
        choice["logprobs"] = logprobs
    body: dict[str, Any] = {"id": "c1", "object": "chat.completion", "model": MODEL, "choices": [choice]}
    if usage is not None:
        body["usage"] = usage
    return body


@pytest.fixture
def serve() -> Iterator:
    """serve(*replies) -> (running server, backend talking to it with tiny timeouts)."""
    running: list[tuple[ChatServer, ServerBackend]] = []

    def start(*replies: Reply, timeout_s: float = 2.0, retries: int = 2) -> tuple[ChatServer, ServerBackend]:
        server = start_server(*replies)
        backend = ServerBackend(
            server.base_url, MODEL, api_key="k", timeout_s=timeout_s, retries=retries, backoff_s=0.01
        )
        running.append((server, backend))
        return server, backend

    yield start
    for server, backend in running:
        backend.close()
        server.shutdown()
        server.server_close()


def test_generate_sends_model_images_and_reads_usage(serve, two_images):
    server, backend = serve(Reply(body=completion("C > A > B", usage={"prompt_tokens": 612, "completion_tokens": 7})))
    result = backend.generate(PROMPT, two_images, max_new_tokens=64)
    assert (result.text, result.prompt_tokens, result.completion_tokens) == ("C > A > B", 612, 7)
    assert result.visual_tokens is None
    assert result.seconds > 0
    (request,) = server.requests
    assert request["path"] == "/v1/chat/completions"
    assert request["headers"]["Authorization"] == "Bearer k"
    body = request["json"]
    assert body["model"] == MODEL
    assert body["temperature"] == 0
    assert body["max_tokens"] == 64
    system, user = body["messages"]
    assert system == {"role": "system", "content": "You rank images."}
    images = [part["image_url"]["url"] for part in user["content"] if part["type"] == "image_url"]
    assert len(images) == 2
    assert all(url.startswith("data:image/jpeg;base64,") for url in images)


def test_missing_usage_leaves_counts_unknown(serve, two_images):
    _, backend = serve(Reply(body=completion("[1, 2]")))
    result = backend.generate(PROMPT, two_images, max_new_tokens=8)
    assert result.prompt_tokens is None
    assert result.completion_tokens is None


@pytest.mark.parametrize("body", ["<html>502 from a proxy</html>", {"error": "no choices here"}, completion(None)])
def test_garbage_answer_is_a_backend_error(serve, two_images, body):
    server, backend = serve(Reply(body=body))
    with pytest.raises(BackendError, match=server.base_url):
        backend.generate(PROMPT, two_images, max_new_tokens=8)
    assert len(server.requests) == 1  # a malformed answer is not retried


def test_client_error_is_not_retried(serve, two_images):
    server, backend = serve(Reply(status=400, body={"error": {"message": "model not found"}}))
    with pytest.raises(BackendError, match="HTTP 400.*model not found"):
        backend.generate(PROMPT, two_images, max_new_tokens=8)
    assert len(server.requests) == 1


def test_timeout_is_retried_then_a_backend_error(serve, two_images):
    server, backend = serve(Reply(body=completion("late"), delay_s=1.0), timeout_s=0.2, retries=2)
    with pytest.raises(BackendError) as error:
        backend.generate(PROMPT, two_images, max_new_tokens=8)
    message = str(error.value)
    assert server.base_url in message
    assert "3 tries" in message
    assert "no answer within 0.2 s" in message
    assert len(server.requests) == 3


def test_unreachable_server_is_a_backend_error(two_images):
    server = start_server(Reply())
    url = server.base_url
    server.shutdown()
    server.server_close()
    backend = ServerBackend(url, MODEL, timeout_s=0.5, retries=1, backoff_s=0.01)
    with pytest.raises(BackendError, match="could not connect"):
        backend.generate(PROMPT, two_images, max_new_tokens=8)


def test_503_then_success_is_retried(serve, two_images):
    server, backend = serve(Reply(status=503, body={"error": "loading"}), Reply(body=completion("B > A")))
    assert backend.generate(PROMPT, two_images, max_new_tokens=8).text == "B > A"
    assert len(server.requests) == 2


def _first_token_logprobs(token: str, logprob: float, top: list[tuple[str, float]]) -> dict[str, Any]:
    top_logprobs = [{"token": t, "logprob": lp, "bytes": list(t.encode())} for t, lp in top]
    return {"content": [{"token": token, "logprob": logprob, "top_logprobs": top_logprobs}]}


def test_first_token_logprobs_map_onto_marks(serve, two_images):
    logprobs = _first_token_logprobs("B", -0.2, [("B", -0.2), ("A", -1.9), (" A", -3.0), ("The", -4.0), ("D", -6.5)])
    server, backend = serve(Reply(body=completion("B", usage={"prompt_tokens": 300}, logprobs=logprobs)))
    scores = backend.first_token_logprobs(PROMPT, two_images, ["A", "B", "C", "D"])
    assert scores.logprobs["B"] == pytest.approx(-0.2)
    assert scores.logprobs["A"] == pytest.approx(math.log(math.exp(-1.9) + math.exp(-3.0)))  # "A" or " A"
    assert scores.logprobs["D"] == pytest.approx(-6.5)
    assert scores.logprobs["C"] == -math.inf
    assert scores.prompt_tokens == 300
    body = server.requests[0]["json"]
    assert (body["max_tokens"], body["logprobs"], body["top_logprobs"]) == (1, True, 20)


def test_server_without_logprobs_says_so(serve, two_images):
    _, backend = serve(Reply(body=completion("B")))
    with pytest.raises(LogprobsUnavailable, match="no logprobs"):
        backend.first_token_logprobs(PROMPT, two_images, ["A", "B"])


def test_pointwise_uses_the_servers_rerank_endpoint_with_the_images_as_documents(serve, two_images):
    reranked = {"id": "r", "results": [{"index": 1, "relevance_score": 0.91}, {"index": 0, "relevance_score": 0.12}],
                "usage": {"total_tokens": 812}}
    server, backend = serve(Reply(body=reranked))
    scores = backend.pointwise_scores("a dog at dusk", None, two_images)
    assert (scores.scores, scores.calls, scores.prompt_tokens) == ([0.12, 0.91], 1, 812)
    (request,) = server.requests
    assert request["path"] == "/v1/rerank"
    body = request["json"]
    assert (body["model"], body["query"]) == (MODEL, "a dog at dusk")
    assert [d["type"] for d in body["documents"]["content"]] == ["image_url", "image_url"]
    assert body["documents"]["content"][0]["image_url"]["url"].startswith("data:image/jpeg;base64,")


def test_pointwise_without_a_rerank_endpoint_reads_yes_against_no_from_chat_logprobs(serve, two_images):
    yes = _first_token_logprobs("yes", -0.1, [("yes", -0.1), ("no", -2.4)])
    no = _first_token_logprobs("No", -0.3, [("No", -0.3), (" yes", -1.5)])
    server, backend = serve(Reply(status=404, body={"detail": "Not Found"}), Reply(body=completion("yes", logprobs=yes)),
                            Reply(body=completion("No", logprobs=no)), Reply(body=completion("no", logprobs=no)))
    scores = backend.pointwise_scores("a dog", None, two_images)
    assert scores.scores == pytest.approx([-0.1 - -2.4, -1.5 - -0.3])  # log-odds of yes over no ("No" is a no)
    assert [r["path"] for r in server.requests] == ["/v1/rerank", "/v1/chat/completions", "/v1/chat/completions"]
    assert "Answer yes or no." in str(server.requests[1]["json"]["messages"])
    # The server said it has no rerank route: later calls go straight to chat.
    backend.pointwise_scores("a dog", None, two_images[:1])
    assert server.requests[-1]["path"] == "/v1/chat/completions"


def test_pointwise_for_a_composed_query_asks_chat_with_the_reference_first(serve, two_images):
    yes = _first_token_logprobs("yes", -0.1, [("yes", -0.1), ("no", -2.4)])
    server, backend = serve(Reply(body=completion("yes", logprobs=yes)))
    backend.pointwise_scores("make it blue", two_images[0], two_images[1:])
    (request,) = server.requests
    assert request["path"] == "/v1/chat/completions"
    parts = request["json"]["messages"][-1]["content"]
    assert [p["type"] for p in parts][:2] == ["image_url", "image_url"]
