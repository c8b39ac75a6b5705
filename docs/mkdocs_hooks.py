"""MkDocs hook: turn the Sphinx roles of the numpydoc docstrings into cross-references.

The docstrings are written for numpydoc, where ``:func:`name``` links to an object. Markdown renders such
a role as the literal role name before a code span; this hook replaces it with an ``autoref`` element that
mkdocs-autorefs resolves to the object's API entry, or leaves as plain code when the object is not
documented here (torch, PyG, or a name given without its module).
"""

import re

# ":func:" then the code span Markdown made of the backquoted target; "~" shows the last component only.
# An explicit title is written "title <target>" (escaped by Markdown as &lt; &gt;).
_ROLE = re.compile(
    r":(?:py:)?(?:func|class|meth|mod|attr|data|obj|exc|const):<code>"
    r"(?:([^<]+?) &lt;([\w.]+)&gt;|(~?)([\w.]+)(\(\))?)</code>"
)


def _autoref(match: re.Match) -> str:
    explicit, explicit_target, short, target, call = match.groups()
    if explicit_target:
        return f'<autoref identifier="{explicit_target}" optional><code>{explicit}</code></autoref>'
    call = call or ""
    title = target.rsplit(".", 1)[-1] if short else target
    return f'<autoref identifier="{target}" optional><code>{title}{call}</code></autoref>'


def on_page_content(html: str, **kwargs) -> str:
    """Replace every rendered Sphinx role in the page's HTML."""
    return _ROLE.sub(_autoref, html)
