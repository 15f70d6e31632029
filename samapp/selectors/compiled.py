"""Reads whose SQL is compiled once per database: for the lookups that every annotation write
makes (the member with the project, the image or the annotation with its image), where the
ORM's compilation of the query costs more CPU than running it (~1 ms each on a small VM).

`CompiledQuery` builds its queryset once, with a placeholder for each parameter, keeps the SQL,
the column converters and the related-object populators the ORM made for it, and then only
runs that SQL with the call's values, building the instance as the ORM's iterator does."""

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from django.db import connections, router
from django.db.models import Model, QuerySet
from django.db.models.query import get_related_populators

M = TypeVar("M", bound=Model)

# Placeholder values for the parameters while compiling: ids no row has, each told apart by
# its value in the compiled parameters.
_PLACEHOLDER = -(2**62)


@dataclass(frozen=True)
class _Compiled:
    sql: str
    params: tuple[tuple[str | None, Any], ...]  # (parameter name, or None and a constant)
    init_list: list[str]
    start: int
    end: int
    converters: dict[int, tuple[list[Callable[..., Any]], Any]]
    populators: list[Any]


class CompiledQuery(Generic[M]):
    """The first row of `build(**values)` as a `model` instance (with the objects its
    `select_related` names). `build` must use each parameter once, as a filter value
    compiled into a query parameter (an id, a key), and the queryset's SQL must depend on nothing
    else that changes at run time."""

    def __init__(self, model: type[M], build: Callable[..., QuerySet[M]], *names: str) -> None:
        self._model = model
        self._build = build
        self._names = names
        self._compiled: dict[str, _Compiled] = {}

    def _compile(self, alias: str) -> _Compiled:
        markers = {name: _PLACEHOLDER - i for i, name in enumerate(self._names)}
        query = self._build(**markers).query
        compiler = query.get_compiler(using=alias)
        sql, compiled_params = compiler.as_sql()
        # A text column's filter compiles the placeholder to its text.
        by_marker = {key: name for name, marker in markers.items() for key in (marker, str(marker))}
        params = tuple(
            (by_marker[value], None)
            if isinstance(value, int | str) and value in by_marker
            else (None, value)
            for value in compiled_params
        )
        used = [name for name, _ in params if name is not None]
        if sorted(used) != sorted(self._names):
            raise ValueError(f"Each of {self._names} must be one query parameter; got {used}.")
        klass_info = compiler.klass_info
        assert klass_info is not None
        select_fields = klass_info["select_fields"]
        start, end = select_fields[0], select_fields[-1] + 1
        compiled = _Compiled(
            sql=sql,
            params=params,
            init_list=[column[0].target.attname for column in compiler.select[start:end]],
            start=start,
            end=end,
            converters=compiler.get_converters(
                [column[0] for column in compiler.select[: compiler.col_count]]
            ),
            # django-stubs describes a later Django, whose signature adds `fetch_mode`.
            populators=get_related_populators(klass_info, compiler.select, alias),  # type: ignore[call-arg]
        )
        self._compiled[alias] = compiled
        return compiled

    def get(self, **values: Any) -> M | None:
        """The first row's instance, or None."""
        alias = router.db_for_read(self._model)
        compiled = self._compiled.get(alias) or self._compile(alias)
        connection = connections[alias]
        with connection.cursor() as cursor:
            cursor.execute(
                compiled.sql,
                [value if name is None else values[name] for name, value in compiled.params],
            )
            found = cursor.fetchone()
        if found is None:
            return None
        row = list(found)
        for position, (converters, expression) in compiled.converters.items():
            for converter in converters:
                row[position] = converter(row[position], expression, connection)
        instance = self._model.from_db(
            alias, compiled.init_list, row[compiled.start : compiled.end]
        )
        for populator in compiled.populators:
            populator.populate(row, instance)
        return instance
