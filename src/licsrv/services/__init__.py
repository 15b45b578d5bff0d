"""The rules of licsrv: one function per use case, each taking a connection or the stores it needs."""
