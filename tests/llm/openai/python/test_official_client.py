"""`chatrec llm-serve` through the official OpenAI Python client: every call a user of that client makes
for generation, scoring and embeddings, with the fields likelihood-based ranking depends on.

run.sh starts the server on loopback with the built-in runtime and the real SmolLM2 model and sets
CHATREC_OPENAI_URL and CHATREC_OPENAI_MODEL.
"""

import json
import math
import os
import unittest

import openai

URL = os.environ["CHATREC_OPENAI_URL"]
MODEL = os.environ["CHATREC_OPENAI_MODEL"]
QUESTION = [{"role": "user", "content": "Name one famous science fiction film."}]


def client():
    return openai.OpenAI(base_url=URL, api_key="unused", max_retries=0, timeout=300)


class Models(unittest.TestCase):
    def test_lists_the_served_model(self):
        ids = [m.id for m in client().models.list()]
        self.assertEqual(ids, [MODEL])

    def test_unknown_model_is_404_model_not_found(self):
        with self.assertRaises(openai.NotFoundError) as caught:
            client().chat.completions.create(model="gpt-4o", messages=QUESTION, max_tokens=2)
        self.assertEqual(caught.exception.code, "model_not_found")
        self.assertEqual(caught.exception.param, "model")
        self.assertIn(MODEL, caught.exception.message)

    def test_bad_parameters_are_400_naming_the_field(self):
        with self.assertRaises(openai.BadRequestError) as caught:
            client().chat.completions.create(model=MODEL, messages=QUESTION, temperature=5)
        self.assertEqual(caught.exception.param, "temperature")
        self.assertEqual(caught.exception.type, "invalid_request_error")
        with self.assertRaises(openai.BadRequestError) as caught:
            client().chat.completions.create(
                model=MODEL, messages=QUESTION, response_format={"type": "json_schema",
                                                                 "json_schema": {"name": "x"}})
        self.assertEqual(caught.exception.param, "response_format")


class Chat(unittest.TestCase):
    def test_greedy_reply_with_usage(self):
        r = client().chat.completions.create(model=MODEL, messages=QUESTION, max_tokens=12,
                                             temperature=0)
        self.assertEqual(r.object, "chat.completion")
        self.assertEqual(r.model, MODEL)
        self.assertEqual(len(r.choices), 1)
        self.assertTrue(r.choices[0].message.content)
        self.assertEqual(r.choices[0].message.role, "assistant")
        self.assertIn(r.choices[0].finish_reason, ("stop", "length"))
        self.assertGreater(r.usage.prompt_tokens, 5)
        self.assertGreater(r.usage.completion_tokens, 0)
        self.assertLessEqual(r.usage.completion_tokens, 12)
        self.assertEqual(r.usage.total_tokens, r.usage.prompt_tokens + r.usage.completion_tokens)

    def test_max_completion_tokens_cuts_the_reply(self):
        r = client().chat.completions.create(model=MODEL, messages=QUESTION,
                                             max_completion_tokens=3)
        self.assertEqual(r.choices[0].finish_reason, "length")
        self.assertEqual(r.usage.completion_tokens, 3)

    def test_logprobs_cover_every_token_with_its_alternatives(self):
        r = client().chat.completions.create(model=MODEL, messages=QUESTION, max_tokens=10,
                                             logprobs=True, top_logprobs=2)
        choice = r.choices[0]
        content = choice.logprobs.content
        self.assertEqual(len(content), r.usage.completion_tokens)
        self.assertEqual(b"".join(bytes(t.bytes) for t in content).decode("utf-8"),
                         choice.message.content)
        for t in content:
            self.assertLessEqual(t.logprob, 0.0)
            self.assertEqual(len(t.top_logprobs), 2)
            self.assertGreaterEqual(t.top_logprobs[0].logprob, t.top_logprobs[1].logprob)
            # Greedy: the chosen token is the most likely one.
            self.assertEqual(t.top_logprobs[0].token, t.token)
            self.assertAlmostEqual(t.top_logprobs[0].logprob, t.logprob, places=6)
        plain = client().chat.completions.create(model=MODEL, messages=QUESTION, max_tokens=10)
        self.assertIsNone(plain.choices[0].logprobs)
        self.assertEqual(plain.choices[0].message.content, choice.message.content)

    def test_stream_matches_the_plain_reply_and_ends_with_usage(self):
        plain = client().chat.completions.create(model=MODEL, messages=QUESTION, max_tokens=12)
        stream = client().chat.completions.create(model=MODEL, messages=QUESTION, max_tokens=12,
                                                  stream=True, logprobs=True,
                                                  stream_options={"include_usage": True})
        text, tokens, usage, finish = "", [], None, None
        for chunk in stream:
            if chunk.usage is not None:
                usage = chunk.usage
            for c in chunk.choices:
                text += c.delta.content or ""
                if c.logprobs is not None and c.logprobs.content:
                    tokens += c.logprobs.content
                finish = c.finish_reason or finish
        self.assertEqual(text, plain.choices[0].message.content)
        self.assertEqual(finish, plain.choices[0].finish_reason)
        self.assertIsNotNone(usage)
        self.assertEqual(usage.completion_tokens, plain.usage.completion_tokens)
        self.assertEqual(len(tokens), usage.completion_tokens)
        self.assertEqual(b"".join(bytes(t.bytes) for t in tokens).decode("utf-8"), text)

    def test_n_choices_are_sampled_with_successive_seeds(self):
        kwargs = dict(model=MODEL, messages=QUESTION, max_tokens=12, temperature=1.0, seed=5)
        r = client().chat.completions.create(n=3, **kwargs)
        self.assertEqual([c.index for c in r.choices], [0, 1, 2])
        again = client().chat.completions.create(n=3, **kwargs)
        self.assertEqual([c.message.content for c in r.choices],
                         [c.message.content for c in again.choices])
        single = client().chat.completions.create(**kwargs)
        self.assertEqual(single.choices[0].message.content, r.choices[0].message.content)
        self.assertGreater(len({c.message.content for c in r.choices}), 1)

    def test_stop_strings_cut_the_reply(self):
        full = client().chat.completions.create(model=MODEL, messages=QUESTION, max_tokens=16)
        text = full.choices[0].message.content
        self.assertGreater(len(text), 6, text)
        stop = text[4:6]
        r = client().chat.completions.create(model=MODEL, messages=QUESTION, max_tokens=16,
                                             stop=["\u0000never", stop])
        self.assertEqual(r.choices[0].message.content, text[:text.find(stop)])
        self.assertEqual(r.choices[0].finish_reason, "stop")

    def test_json_object_mode_returns_parseable_json(self):
        messages = [{"role": "system", "content": "Reply with JSON only."},
                    {"role": "user", "content":
                     'Give the film "Toy Story" as a JSON object with keys "title" and "year".'}]
        r = client().chat.completions.create(model=MODEL, messages=messages, max_tokens=64,
                                             response_format={"type": "json_object"})
        self.assertEqual(r.choices[0].finish_reason, "stop", r.choices[0].message.content)
        value = json.loads(r.choices[0].message.content)
        self.assertIsInstance(value, dict)


class Completions(unittest.TestCase):
    def test_generated_tokens_with_logprobs(self):
        prompt = "The capital of France is"
        r = client().completions.create(model=MODEL, prompt=prompt, max_tokens=5, logprobs=2)
        choice = r.choices[0]
        lp = choice.logprobs
        self.assertEqual("".join(lp.tokens), choice.text)
        self.assertEqual(len(lp.token_logprobs), len(lp.tokens))
        self.assertEqual(len(lp.top_logprobs), len(lp.tokens))
        self.assertEqual(lp.text_offset[0], len(prompt))
        for token, logprob, top in zip(lp.tokens, lp.token_logprobs, lp.top_logprobs):
            self.assertLessEqual(logprob, 0.0)
            self.assertLessEqual(len(top), 2)
            self.assertAlmostEqual(max(top.values()), logprob, places=6)
        self.assertEqual(r.usage.completion_tokens, len(lp.tokens))

    def test_echo_scores_a_given_continuation(self):
        # chatrec renders chats as plain text for scoring (docs/openai.md).
        likely = "User: Name one famous science fiction film.\n\nAssistant: Star Wars"
        unlikely = "User: Name one famous science fiction film.\n\nAssistant: soup ladder"
        scores = []
        for prompt in (likely, unlikely):
            r = client().completions.create(model=MODEL, prompt=prompt, max_tokens=0, echo=True,
                                            logprobs=0)
            lp = r.choices[0].logprobs
            self.assertEqual(r.choices[0].text, prompt)
            self.assertEqual("".join(lp.tokens), prompt)
            self.assertIsNone(lp.token_logprobs[0])
            scores.append(sum(x for x in lp.token_logprobs[1:]))
        self.assertGreater(scores[0], scores[1])


class Embeddings(unittest.TestCase):
    def test_base64_default_and_float_give_the_same_unit_vectors(self):
        texts = ["a space adventure", "a quiet romance"]
        default = client().embeddings.create(model=MODEL, input=texts)  # base64 on the wire
        floats = client().embeddings.create(model=MODEL, input=texts, encoding_format="float")
        self.assertEqual(len(default.data), 2)
        for a, b in zip(default.data, floats.data):
            self.assertEqual(len(a.embedding), len(b.embedding))
            for x, y in zip(a.embedding, b.embedding):
                self.assertAlmostEqual(x, y, places=6)
            self.assertAlmostEqual(math.sqrt(sum(x * x for x in a.embedding)), 1.0, places=4)
        self.assertGreater(default.usage.prompt_tokens, 0)


if __name__ == "__main__":
    unittest.main()
