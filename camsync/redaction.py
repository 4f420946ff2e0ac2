"""The one rule that hides the credentials written inside a URL, shared by the logs and the settings' messages."""

from __future__ import annotations

import re

# scheme://user:password@host — the password runs to the LAST `@` of the token, so that a raw `@`, `:` or `/`
# inside it (an unencoded password) is hidden whole rather than showing its tail.
# A mistyped `scheme:/user:password@host` (one slash, or none) is hidden the same way.
_URL_CREDENTIALS = re.compile(r"(?P<head>[a-zA-Z][\w+.-]*:/{0,2}[^\s:/@]*:)\S*@")


def hide_url_credentials(text: str) -> str:
    """`text` with the password of every `scheme://user:password@host` replaced by `****`."""
    return _URL_CREDENTIALS.sub(r"\g<head>****@", text)
