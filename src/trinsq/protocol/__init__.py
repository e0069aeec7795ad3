"""Sans-IO NSQ protocol code shared by the broker and the registry. No trio imports here."""

from ._commands import (
    Auth as Auth,
    Close as Close,
    Command as Command,
    DeferredPublish as DeferredPublish,
    Finish as Finish,
    Identify as Identify,
    MultiPublish as MultiPublish,
    Nop as Nop,
    Publish as Publish,
    Ready as Ready,
    Requeue as Requeue,
    Subscribe as Subscribe,
    Touch as Touch,
)
from ._errors import (
    NON_FATAL_CODES as NON_FATAL_CODES,
    ConnectionMustClose as ConnectionMustClose,
    ProtocolError as ProtocolError,
)
from ._frames import (
    CLOSE_WAIT_FRAME as CLOSE_WAIT_FRAME,
    HEARTBEAT_FRAME as HEARTBEAT_FRAME,
    MESSAGE_HEADER_SIZE as MESSAGE_HEADER_SIZE,
    OK_FRAME as OK_FRAME,
    Frame as Frame,
    FrameDecoder as FrameDecoder,
    FrameType as FrameType,
    append_message_frame as append_message_frame,
    encode_error as encode_error,
    encode_frame as encode_frame,
    encode_message as encode_message,
    encode_response as encode_response,
)
from ._gofmt import go_quote as go_quote, parse_base10 as parse_base10
from ._identify import (
    ClientSettings as ClientSettings,
    IdentifyRequest as IdentifyRequest,
    IdentifyResult as IdentifyResult,
    ServerFeatures as ServerFeatures,
    negotiate_identify as negotiate_identify,
    parse_identify as parse_identify,
)
from ._names import (
    EPHEMERAL_SUFFIX as EPHEMERAL_SUFFIX,
    is_ephemeral as is_ephemeral,
    is_valid_channel_name as is_valid_channel_name,
    is_valid_name_bytes as is_valid_name_bytes,
    is_valid_topic_name as is_valid_topic_name,
)
from ._v2 import (
    CLOSED as CLOSED,
    MAGIC_V2 as MAGIC_V2,
    NEED_DATA as NEED_DATA,
    ClientState as ClientState,
    Limits as Limits,
    NeedData as NeedData,
    StreamClosed as StreamClosed,
    V2ServerConnection as V2ServerConnection,
)
