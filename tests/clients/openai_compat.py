"""The official `openai` Python client against `ouroboros serve` (a diffusion checkpoint).

Run by tests/openai_client.rs with the client installed by `scripts/openai-venv.sh install`:

    python tests/clients/openai_compat.py BASE_URL MODEL KEY

It prints one JSON object with what each call gave, and exits non-zero if a call the server
documents as supported fails, or one it documents as refused (streaming) does not fail the
documented way.
"""

import json
import sys

import openai


def main() -> int:
    base, model, key = sys.argv[1], sys.argv[2], sys.argv[3]
    client = openai.OpenAI(base_url=base, api_key=key, max_retries=0)
    out = {"client": openai.__version__}

    out["models"] = [m.id for m in client.models.list().data]

    # Infilling through OpenAI's insert form, with Ouroboros's own settings as extra fields.
    c = client.completions.create(
        model=model,
        prompt="def add(a, b):\n",
        suffix="\n\nprint(add(1, 2))\n",
        max_tokens=16,
        temperature=0,
        seed=3,
        extra_body={"steps": 8},
    )
    out["infill"] = {
        "text": c.choices[0].text,
        "finish_reason": c.choices[0].finish_reason,
        "completion_tokens": c.usage.completion_tokens,
        "steps": c.model_extra["ouroboros"]["steps"],
    }

    c = client.completions.create(
        model=model, prompt="def add(a, b):\n", max_tokens=16, seed=3,
        extra_body={"steps": 8, "block_length": 8},
    )
    out["completion"] = c.choices[0].text

    chat = client.chat.completions.create(
        model=model,
        messages=[{"role": "user", "content": "Write add(a, b)."}],
        max_tokens=16,
        seed=1,
        extra_body={"steps": 8},
    )
    out["chat"] = {
        "role": chat.choices[0].message.role,
        "content": chat.choices[0].message.content,
    }

    # Streaming is documented as refused: a 400 naming the field.
    try:
        client.completions.create(model=model, prompt="x", max_tokens=4, stream=True)
        out["stream"] = "accepted"
    except openai.BadRequestError as e:
        out["stream"] = "refused: " + str(e)

    try:
        openai.OpenAI(base_url=base, api_key="wrong", max_retries=0).models.list()
        out["wrong_key"] = "accepted"
    except openai.AuthenticationError:
        out["wrong_key"] = "refused"

    print(json.dumps(out))
    ok = out["stream"].startswith("refused") and "stream" in out["stream"]
    return 0 if ok and out["wrong_key"] == "refused" else 1


if __name__ == "__main__":
    sys.exit(main())
