"""`with` for a resource the process opens (the audit log, the state store): the block's end
closes it, whatever ended the block."""

from __future__ import annotations

from types import TracebackType
from typing import Self


class Closing:
    """A resource that a `with` block closes: the class gives `close`."""

    def close(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
