"""Small pieces of MIS's official judge code, copied for side-by-side tests
(tests/test_official_call_settings.py). Logic kept line for line; the API call is dropped."""

# ruff: noqa
# mypy: ignore-errors

# --- github.com/DripNowhy/MIS, evaluation/gpt_eval.py, commit 552fc115da669c04e7817782678767fcca696ba0.
default_generation_config = {
    "max_tokens": 128,
    "top_p": 1.0, 
    "temperature": 0.0
}


def evaluate_function_message(image_format1, base64_image1, image_format2, base64_image2, text):
    """One element of `eval_message_input` in `evaluate_function` (`text` is the filled PROMPT_TEMPLATE)."""
    message = [
        {"role": "system", "content": "You are a helpful assistant."},
        {
            "role": "user",
            "content": [
                {
                    "type": "image_url",
                    "image_url": {
                        "url": f"data:{image_format1};base64,{base64_image1}",
                    },
                },
                {
                    "type": "image_url",
                    "image_url": {
                        "url": f"data:{image_format2};base64,{base64_image2}"
                    },
                },
                {
                    "type": "text",
                    "text": text,
                },
            ],
        },
    ]
    return message
