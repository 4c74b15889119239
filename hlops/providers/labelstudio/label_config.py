"""A project's inputs and outputs as a Label Studio ``label_config``, and the semantic
difference of two configs. Pure: no HTTP, no files.

The generated config (docs/providers-labelstudio.md)::

    <View>
      <Text name="text" value="$text"/>                        one per input
      <Header value="..."/>                                    an output's description
      <Choices name="sentiment" toName="text" choice="single"> classification
        <Choice value="positive" hint="..."/>                  a label (hint: its description)
      </Choices>
      <Choices ... choice="multiple">                          multilabel_classification
      <Labels name="entities" toName="text">                   sequence_tagging, over its input
        <Label value="PERSON" hint="..."/>
      </Labels>
    </View>

A task's ``data`` holds one key per input (:mod:`.tasks`), so ``value="$<input>"``.
Classification outputs point at the first input that is not ``display_only``.

:func:`compare` parses both configs (XML, not text) and lists what changed — controls and
objects by ``name``, labels by ``value`` — with what each change means for annotations:
``refused_if_used`` when Label Studio rejects the new config while annotations use what is
removed, ``loses_annotations`` when the change leaves existing annotations behind. Measured
on 1.23.2 (tests/labelstudio/test_client_real.py): ``PATCH /api/projects/{id}`` refuses
(400) removing a *control* annotations use, but *accepts* removing a used *label* (the
annotations keep a label the config lost); ``POST /api/projects/{id}/validate`` (strict)
refuses both. Label Studio checks against its project summary, which counts annotations
made through the API but not those imported inline with tasks — so hlops must compute the
labels in use itself (:func:`labels_in_use`) and not rely on Label Studio refusing.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from hlops.models import Project

CONTROL_TAGS = {"Choices", "Labels"}
OBJECT_TAGS = {"Text", "HyperText"}
LABEL_TAGS = {"Choice", "Label"}


class LabelConfigError(ValueError):
    """A config that is not XML, or not one this module can compare."""


# --------------------------------------------------------------------------- generate


def target_input(project: Project) -> str:
    """The input a classification output labels: the first that is not display-only."""
    for name, spec in project.inputs.items():
        if not spec.display_only:
            return name
    return next(iter(project.inputs))


def label_config(project: Project, data_labels: Mapping[str, Sequence[str]] | None = None) -> str:
    """The ``label_config`` XML of ``project``. ``data_labels`` adds labels per output that
    come from its ``from`` field's values rather than from ``labels`` (sorted, after them)."""
    data_labels = data_labels or {}
    view = ET.Element("View")
    for name in project.inputs:
        ET.SubElement(view, "Text", {"name": name, "value": f"${name}"})
    for name, output in project.outputs.items():
        if output.description:
            ET.SubElement(view, "Header", {"value": output.description})
        if output.task_type == "sequence_tagging":
            control = ET.SubElement(view, "Labels", {"name": name, "toName": output.input or ""})
            child = "Label"
        else:
            choice = "multiple" if output.task_type == "multilabel_classification" else "single"
            control = ET.SubElement(view, "Choices", {
                "name": name, "toName": target_input(project), "choice": choice,
            })
            child = "Choice"
        labels = output.label_map()
        for extra in sorted(set(data_labels.get(name, ())) - set(labels)):
            labels[extra] = None
        for value, hint in labels.items():
            attrs = {"value": value}
            if hint:
                attrs["hint"] = hint
            ET.SubElement(control, child, attrs)
    ET.indent(view, space="  ")
    return ET.tostring(view, encoding="unicode")


# --------------------------------------------------------------------------- parse


@dataclass(frozen=True)
class Control:
    tag: str  # Choices | Labels | ...
    to_name: str
    attrs: tuple[tuple[str, str], ...]  # every other attribute, sorted (choice, ...)
    labels: tuple[tuple[str, tuple[tuple[str, str], ...]], ...]  # (value, other attrs), in order

    def label_values(self) -> list[str]:
        return [value for value, _ in self.labels]


@dataclass(frozen=True)
class Parsed:
    objects: dict[str, tuple[str, str]]  # name -> (tag, value)
    controls: dict[str, Control]


def parse(config: str) -> Parsed:
    """The comparable structure of a config: objects (``Text`` ...) and controls by name.
    Layout-only tags (``View``, ``Header``, ``Style``) carry no annotation and are left out."""
    try:
        root = ET.fromstring(config)
    except ET.ParseError as exc:
        raise LabelConfigError(f"label_config is not XML: {exc}") from None
    objects: dict[str, tuple[str, str]] = {}
    controls: dict[str, Control] = {}
    for el in root.iter():
        name = el.get("name")
        if name is None:
            continue
        if el.get("toName") is not None:
            labels = tuple(
                (child.get("value", ""), _rest(child.attrib, ("value",)))
                for child in el.iter() if child is not el and child.get("value") is not None
            )
            if name in controls:
                raise LabelConfigError(f"label_config names two controls {name!r}")
            controls[name] = Control(el.tag, el.get("toName", ""),
                                     _rest(el.attrib, ("name", "toName")), labels)
        elif el.get("value") is not None and el.tag not in LABEL_TAGS:
            objects[name] = (el.tag, el.get("value", ""))
    return Parsed(objects, controls)


def _rest(attrs: Mapping[str, str], skip: tuple[str, ...]) -> tuple[tuple[str, str], ...]:
    return tuple(sorted((k, v) for k, v in attrs.items() if k not in skip))


# --------------------------------------------------------------------------- compare


@dataclass(frozen=True)
class ConfigChange:
    """One semantic difference. ``what``: ``object`` | ``control`` | ``label``; ``op``:
    ``+`` | ``-`` | ``~``. ``name`` is the object or control, ``label`` the label value."""

    what: str
    op: str
    name: str
    label: str | None = None
    old: object = None
    new: object = None
    loses_annotations: bool = False
    refused_if_used: bool = False

    def path(self) -> str:
        return self.name + (f".labels.{self.label}" if self.label is not None else "")


@dataclass(frozen=True)
class ConfigDiff:
    changes: tuple[ConfigChange, ...] = field(default_factory=tuple)

    def __bool__(self) -> bool:
        return bool(self.changes)

    @property
    def loses_annotations(self) -> bool:
        return any(c.loses_annotations for c in self.changes)

    def refused(self, used: Mapping[str, set[str]]) -> list[ConfigChange]:
        """The changes Label Studio would refuse, given the labels annotations use
        (control name -> label values in use; a control present with an empty set is
        used without labels, e.g. by a text area)."""
        out = []
        for c in self.changes:
            if not c.refused_if_used or c.name not in used:
                continue
            if c.label is None or c.label in used[c.name]:
                out.append(c)
        return out


def compare(old: str, new: str) -> ConfigDiff:
    """What changes from config ``old`` to config ``new`` (both XML strings)."""
    a, b = parse(old), parse(new)
    changes: list[ConfigChange] = []
    for name in sorted(a.objects.keys() | b.objects.keys()):
        was, now = a.objects.get(name), b.objects.get(name)
        if was == now:
            continue
        op = "+" if was is None else "-" if now is None else "~"
        # an object's annotations live on the controls pointing at it: a removed or renamed
        # data key leaves them pointing at nothing.
        changes.append(ConfigChange("object", op, name, old=was, new=now,
                                    loses_annotations=op != "+"))
    for name in sorted(a.controls.keys() | b.controls.keys()):
        was, now = a.controls.get(name), b.controls.get(name)
        if was == now:
            continue
        if was is None or now is None:
            removed = now is None
            changes.append(ConfigChange(
                "control", "-" if removed else "+", name, old=was and was.tag, new=now and now.tag,
                loses_annotations=removed, refused_if_used=removed,
            ))
            continue
        if (was.tag, was.to_name, was.attrs) != (now.tag, now.to_name, now.attrs):
            kind_changed = was.tag != now.tag or was.to_name != now.to_name
            changes.append(ConfigChange(
                "control", "~", name,
                old={"tag": was.tag, "toName": was.to_name, **dict(was.attrs)},
                new={"tag": now.tag, "toName": now.to_name, **dict(now.attrs)},
                loses_annotations=kind_changed, refused_if_used=kind_changed,
            ))
        old_labels, new_labels = dict(was.labels), dict(now.labels)
        for value in was.label_values():
            if value not in new_labels:
                changes.append(ConfigChange("label", "-", name, value, old=value,
                                            loses_annotations=True, refused_if_used=True))
            elif old_labels[value] != new_labels[value]:
                changes.append(ConfigChange("label", "~", name, value,
                                            old=dict(old_labels[value]), new=dict(new_labels[value])))
        for value in now.label_values():
            if value not in old_labels:
                changes.append(ConfigChange("label", "+", name, value, new=value))
    return ConfigDiff(tuple(changes))


def labels_in_use(annotation_results: Sequence[Sequence[Mapping]]) -> dict[str, set[str]]:
    """Control name -> label values used by annotations (their ``result`` lists)."""
    used: dict[str, set[str]] = {}
    for result in annotation_results:
        for region in result:
            values = used.setdefault(str(region.get("from_name")), set())
            value = region.get("value") or {}
            for key in ("choices", "labels"):
                values.update(value.get(key) or ())
    return used
