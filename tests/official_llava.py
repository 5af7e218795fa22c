"""The LLaVA repository's `llava_v1` conversation as UnsafeConcepts' official code uses it,
copied for side-by-side tests (tests/test_official_prompt_formats.py)."""

# ruff: noqa
# mypy: ignore-errors

# --- github.com/TrustAIRLab/SaferVLM, llava/conversation.py, commit
# --- 22632cf1b1d0a91dba8541df95a8d400fc59db52: `conv_llava_v1` and the SeparatorStyle.TWO branch of
# --- `Conversation.get_prompt` (plain-text messages only).
system = ("A chat between a curious human and an artificial intelligence assistant. "
          "The assistant gives helpful, detailed, and polite answers to the human's questions.")
roles = ("USER", "ASSISTANT")
sep = " "
sep2 = "</s>"


def get_prompt(messages):
    seps = [sep, sep2]
    ret = system + seps[0]
    for i, (role, message) in enumerate(messages):
        if message:
            ret += role + ": " + message + seps[i % 2]
        else:
            ret += role + ":"
    return ret


# --- same repository, vlms.py: the llava branch of `inference` (mm_use_im_start_end False).
def llava_prompt(prompt):
    DEFAULT_IMAGE_TOKEN = "<image>"
    prompt = DEFAULT_IMAGE_TOKEN + "\n" + prompt
    messages = [[roles[0], prompt], [roles[1], None]]
    return get_prompt(messages)
