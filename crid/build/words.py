"""Dockerfile word processing: quotes, backslash escapes and `$VAR` / `${VAR}` /
`${VAR:-default}` / `${VAR:+alternative}` expansion, as the classic builder's shell lexer does
for ENV, LABEL, ARG, COPY, ADD, WORKDIR, USER, EXPOSE, VOLUME, STOPSIGNAL and FROM.

Single quotes keep everything literal; double quotes keep spaces and still expand; a backslash
makes the next character literal (outside single quotes).
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from crid.build.errors import BuildError

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def split_words(text: str, env: Mapping[str, str]) -> list[str]:
    """`text` expanded and split on unquoted white space, quotes removed.

    Raises:
        BuildError: an unterminated quote or `${`.
    """
    return _Lexer(text, env).words()


def expand_word(text: str, env: Mapping[str, str]) -> str:
    """`text` expanded as one word (white space kept)."""
    return _Lexer(text, env, split=False).words()[0] if text.strip() else ""


class _Lexer:
    def __init__(self, text: str, env: Mapping[str, str], split: bool = True) -> None:
        self.text = text
        self.env = env
        self.split = split
        self.i = 0

    def words(self) -> list[str]:
        out: list[str] = []
        word: list[str] = []
        started = False
        while self.i < len(self.text):
            ch = self.text[self.i]
            if ch.isspace() and self.split:
                if started:
                    out.append("".join(word))
                    word, started = [], False
                self.i += 1
                continue
            started = True
            if ch == "'":
                word.append(self._until_quote("'"))
            elif ch == '"':
                word.append(self._double_quoted())
            elif ch == "\\" and self.i + 1 < len(self.text):
                word.append(self.text[self.i + 1])
                self.i += 2
            elif ch == "$":
                word.append(self._variable())
            else:
                word.append(ch)
                self.i += 1
        if started or not out:
            out.append("".join(word))
        return out

    def _until_quote(self, quote: str) -> str:
        end = self.text.find(quote, self.i + 1)
        if end < 0:
            raise BuildError(f"unexpected end of statement while looking for matching {quote}")
        value = self.text[self.i + 1:end]
        self.i = end + 1
        return value

    def _double_quoted(self) -> str:
        self.i += 1
        out: list[str] = []
        while self.i < len(self.text):
            ch = self.text[self.i]
            if ch == '"':
                self.i += 1
                return "".join(out)
            if ch == "\\" and self.text[self.i + 1:self.i + 2] in ('"', "\\", "$"):
                out.append(self.text[self.i + 1])
                self.i += 2
            elif ch == "$":
                out.append(self._variable())
            else:
                out.append(ch)
                self.i += 1
        raise BuildError('unexpected end of statement while looking for matching "')

    def _variable(self) -> str:
        self.i += 1
        if self.text[self.i:self.i + 1] == "{":
            end = self.text.find("}", self.i)
            if end < 0:
                raise BuildError(f"missing '}}' in {self.text!r:.200}")
            body = self.text[self.i + 1:end]
            self.i = end + 1
            return self._braced(body)
        m = _NAME.match(self.text, self.i)
        if not m:
            return "$"
        self.i = m.end()
        return self.env.get(m.group(), "")

    def _braced(self, body: str) -> str:
        m = _NAME.match(body)
        if not m:
            raise BuildError(f"bad substitution: ${{{body}}}")
        name, rest = m.group(), body[m.end():]
        value = self.env.get(name)
        if not rest:
            return value or ""
        word = _Lexer(rest[2:], self.env, split=False).words()[0] if len(rest) > 2 else ""
        if rest.startswith(":-"):
            return value if value else word
        if rest.startswith(":+"):
            return word if value else ""
        raise BuildError(f"unsupported modifier ({rest[:2]}) in substitution: ${{{body}}}")


def key_values(text: str, env: Mapping[str, str], what: str) -> list[tuple[str, str]]:
    """`k=v k2="v 2"` pairs (ENV, LABEL), or the legacy `key value with spaces` form.

    Raises:
        BuildError: a word without `=` in the k=v form, or an empty key.
    """
    words = split_words(text, env)
    if words and "=" not in words[0]:
        if len(words) < 2:
            raise BuildError(f"{what} requires two arguments: key and value")
        rest = text.strip()[len(text.strip().split(None, 1)[0]):].strip()
        return [(words[0], expand_word(rest, env))]
    pairs = []
    for word in words:
        key, eq, value = word.partition("=")
        if not eq or not key:
            raise BuildError(f"{what}: syntax error - can't find = in {word!r:.80}. "
                             "Must be of the form: name=value")
        pairs.append((key, value))
    return pairs
