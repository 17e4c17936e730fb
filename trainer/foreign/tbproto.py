"""TensorBoard's `Event` message, the part voxtop reads, as protobuf classes built at first use.

The field numbers are those of TensorBoard's `event.proto`, `summary.proto`, `tensor.proto` and
`tensor_shape.proto` (tests compare the decoding with tensorboard's own compiled modules), so
protobuf does the decoding without TensorBoard or TensorFlow installed. The classes live in a
private descriptor pool, so they never clash with tensorboard's when both are loaded.
"""

from __future__ import annotations

import functools
from typing import Any

#: (message, [(field name, number, type, label, type name of a message field)]); types and labels as
#: in descriptor.proto: 1 double, 2 float, 3 int64, 5 int32, 9 string, 11 message, 12 bytes, 14 enum-as-int
_OPTIONAL, _REPEATED = 1, 3
_MESSAGES: list[tuple[str, list[tuple[str, int, int, int, str]]]] = [
    ("Event", [("wall_time", 1, 1, _OPTIONAL, ""), ("step", 2, 3, _OPTIONAL, ""),
               ("file_version", 3, 9, _OPTIONAL, ""), ("summary", 5, 11, _OPTIONAL, "Summary")]),
    ("Summary", [("value", 1, 11, _REPEATED, "Value")]),
    ("Value", [("node_name", 7, 9, _OPTIONAL, ""), ("tag", 1, 9, _OPTIONAL, ""),
               ("metadata", 9, 11, _OPTIONAL, "SummaryMetadata"), ("simple_value", 2, 2, _OPTIONAL, ""),
               ("image", 4, 11, _OPTIONAL, "Image"), ("audio", 6, 11, _OPTIONAL, "Audio"),
               ("tensor", 8, 11, _OPTIONAL, "TensorProto")]),
    ("Image", [("height", 1, 5, _OPTIONAL, ""), ("width", 2, 5, _OPTIONAL, ""), ("colorspace", 3, 5, _OPTIONAL, ""),
               ("encoded_image_string", 4, 12, _OPTIONAL, "")]),
    ("Audio", [("sample_rate", 1, 2, _OPTIONAL, ""), ("num_channels", 2, 3, _OPTIONAL, ""),
               ("length_frames", 3, 3, _OPTIONAL, ""), ("encoded_audio_string", 4, 12, _OPTIONAL, ""),
               ("content_type", 5, 9, _OPTIONAL, "")]),
    ("SummaryMetadata", [("plugin_data", 1, 11, _OPTIONAL, "PluginData"), ("display_name", 2, 9, _OPTIONAL, "")]),
    ("PluginData", [("plugin_name", 1, 9, _OPTIONAL, ""), ("content", 2, 12, _OPTIONAL, "")]),
    ("TensorProto", [("dtype", 1, 5, _OPTIONAL, ""), ("tensor_shape", 2, 11, _OPTIONAL, "TensorShapeProto"),
                     ("tensor_content", 4, 12, _OPTIONAL, ""), ("float_val", 5, 2, _REPEATED, ""),
                     ("double_val", 6, 1, _REPEATED, ""), ("int_val", 7, 5, _REPEATED, ""),
                     ("string_val", 8, 12, _REPEATED, ""), ("int64_val", 10, 3, _REPEATED, ""),
                     ("bool_val", 11, 8, _REPEATED, ""), ("half_val", 13, 5, _REPEATED, "")]),
    ("TensorShapeProto", [("dim", 2, 11, _REPEATED, "Dim")]),
    ("Dim", [("size", 1, 3, _OPTIONAL, ""), ("name", 2, 9, _OPTIONAL, "")]),
]
_PACKAGE = "voxtop.tensorboard"
_VALUE_ONEOF = ("simple_value", "image", "audio", "tensor")

#: TensorFlow's DataType numbers of the scalars voxtop reads: DT_FLOAT, DT_DOUBLE, DT_INT32, DT_INT64, DT_HALF,
#: DT_BFLOAT16, DT_BOOL, DT_STRING.
DT_FLOAT, DT_DOUBLE, DT_INT32, DT_INT64, DT_HALF, DT_BFLOAT16, DT_BOOL, DT_STRING = 1, 2, 3, 9, 19, 14, 10, 7


@functools.cache
def event_class() -> Any:
    """The `Event` message class (protobuf imported here, on first use)."""
    from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

    file_proto = descriptor_pb2.FileDescriptorProto(name="voxtop_tensorboard_event.proto", package=_PACKAGE,
                                                    syntax="proto3")
    for message_name, fields in _MESSAGES:
        message = file_proto.message_type.add(name=message_name)
        for field_name, number, kind, label, type_name in fields:
            field = message.field.add(name=field_name, number=number, type=kind, label=label)
            if type_name:
                field.type_name = f".{_PACKAGE}.{type_name}"
            if label == _REPEATED and kind not in (9, 11, 12):
                field.options.packed = True
    value = next(m for m in file_proto.message_type if m.name == "Value")
    value.oneof_decl.add(name="value")  # as in summary.proto: a 0.0 simple_value is still written
    for field in value.field:
        if field.name in _VALUE_ONEOF:
            field.oneof_index = 0
    pool = descriptor_pool.DescriptorPool()
    pool.AddSerializedFile(file_proto.SerializeToString())
    return message_factory.GetMessageClass(pool.FindMessageTypeByName(f"{_PACKAGE}.Event"))
