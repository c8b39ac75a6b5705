"""Griffe extension: the reStructuredText maths of the numpydoc docstrings, as Arithmatex maths for MkDocs.

Docstrings follow numpydoc, whose equations are ``.. math::`` directives and ``:math:`` roles. Markdown would
read their underscores and asterisks as emphasis; rewritten as ``$$ … $$`` blocks and ``$ … $`` spans, they
are kept verbatim by ``pymdownx.arithmatex`` and typeset by MathJax. The source docstrings stay unchanged.
"""

import re
import textwrap

import griffe

# A directive line, then its body: blank lines or lines indented deeper than the directive.
_BLOCK = re.compile(r"^(?P<indent>[ \t]*)\.\. math::[ \t]*\n(?P<body>(?:(?P=indent)[ \t]+\S.*\n|[ \t]*\n)+)", re.M)
_ROLE = re.compile(r":math:`([^`]+)`")


def _block(match: re.Match) -> str:
    indent = match.group("indent")
    body = textwrap.dedent(match.group("body")).strip("\n")
    # One $$ block per equation: a blank line would end an Arithmatex block early.
    equations = [part.strip("\n") for part in re.split(r"\n[ \t]*\n", body) if part.strip()]
    blocks = [
        "\n".join([f"{indent}$$", *(indent + line for line in equation.splitlines()), f"{indent}$$"])
        for equation in equations
    ]
    return "\n\n".join(blocks) + "\n\n"


def rst_math_to_arithmatex(text: str) -> str:
    """Rewrite ``.. math::`` blocks and ``:math:`` roles of a docstring."""
    text = _BLOCK.sub(_block, text if text.endswith("\n") else text + "\n")
    return _ROLE.sub(lambda match: f"${match.group(1)}$", text).rstrip("\n")


class RstMath(griffe.Extension):
    """Rewrite the maths of every docstring as it is loaded."""

    def on_instance(self, *, obj: griffe.Object, **kwargs) -> None:
        """Rewrite ``obj``'s docstring, if it has maths."""
        if obj.docstring is not None and "math:" in obj.docstring.value:
            obj.docstring.value = rst_math_to_arithmatex(obj.docstring.value)
