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


# --- github.com/DripNowhy/MIS, evaluation/inference_vllm.py, commit
# --- 5e77a633abc5227e3db7ce4e24698e7d0133eb9b: `prepare_inputs`, its prompt-building lines per
# --- branch (images are the two paths; opening them is dropped). InternVL's branch returns the
# --- messages it passes to its tokenizer's chat template.
def prepare_inputs_prompt(model_name, query, images):
    if 'internvl' in model_name.lower():
        placeholders = "\n".join(f"Image-{i}: <image>\n"
                                for i, _ in enumerate(images, start=1))
        messages = [{'role': 'user', 'content': f"{placeholders}\n{query}"}]
        return messages
    elif 'phi' in model_name.lower():
        placeholders = "\n".join(f"<|image_{i}|>"
                                    for i, _ in enumerate(images, start=1))
        prompt = f"<|user|>\n{placeholders}\n{query}<|end|>\n<|assistant|>\n"
        return prompt
    elif 'idefics' in model_name.lower():
        placeholders = "\n".join(f"Image-{i}: <image>\n"
                                for i, _ in enumerate(images, start=1))
        prompt = f"<|begin_of_text|>User:{placeholders}\n{query}<end_of_utterance>\nAssistant:"
        return prompt
    elif 'llava' in model_name.lower():
        if '72b' in model_name:
            placeholders = "\n".join(f"Image-{i}: <image>\n"
                                    for i, _ in enumerate(images, start=1))
            prompt = f"<|user|>\n{placeholders}\n{query}<|end|>\n<|assistant|>\n"
            return prompt
    else:
        raise ValueError(f"Model {model_name} not supported in vLLM")
