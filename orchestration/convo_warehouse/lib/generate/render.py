"""Render: SQL that turns a chunk's codes into the strings written to files.

Message text with its slots filled, the ``properties`` JSON text, the
timestamp in one of ``TS_FORMS``, identifiers, and each bad row's defect;
then one JSON line per row for the JSONL files.
"""

from __future__ import annotations

from convo_warehouse.lib.generate import text
from convo_warehouse.lib.generate.settings import ALIASES, BAD_CLASSES, CANONICAL_TYPES
from convo_warehouse.lib.warehouse import sql_literal


def sql_list(values: list[str]) -> str:
    return "[" + ", ".join(sql_literal(v) for v in values) + "]"


def render_sql(seed: int) -> str:
    """SQL over the registered arrow table ``raw``: one output row per raw row, strings rendered."""
    b = {name: i for i, name in enumerate(BAD_CLASSES)}
    fill = "tpl::varchar"
    slots = {
        "{agent_name}": "agent_name::varchar",
        "{order}": "'A' || (100000 + (conv_n * 7919) % 900000)::varchar",
        "{email}": "s_email::varchar",
        "{product}": "s_product::varchar",
        "{plan}": "s_plan::varchar",
        "{amount}": "s_amount::varchar",
        "{last4}": "s_last4::varchar",
        "{tracking}": "'1Z' || (10000000 + (conv_n * 97) % 90000000)::varchar",
        "{seats}": "(5 + (conv_n * 11) % 200)::varchar",
        "{company}": "s_company::varchar",
        "{day}": "s_day::varchar",
        "{time}": "s_time::varchar",
    }
    for slot, expr in slots.items():
        fill = f"replace({fill}, '{slot}', {expr})"
    suffix = sql_literal(text.LONG_REPLY_SUFFIX)

    props = """nullif(rtrim(props_a, ','), ''),
            case when content is not null then '"content":"' || content || '"' end,
            case when is_user and content is not null then '"message_length":' || length(content)::varchar end,
            case when is_agent and content is not null then '"response_length":' || length(content)::varchar end,
            -- what the agent's model call would read (a system prompt plus the
            -- conversation so far, growing by event) and write (about four
            -- characters a token), for the cost per model (seeds/model_prices.csv)
            case when is_agent and content is not null then
                '"input_tokens":' || (600 + 45 * seq)::varchar
                || ',"output_tokens":' || ((length(content) + 3) // 4)::varchar end,
            nullif(rtrim(props_b, ','), ''),
            case when redeliver then '"delivery_attempt":2' end"""
    ts_forms = """case ts_kind
            when 0 then strftime(t, '%Y-%m-%dT%H:%M:%S.%g') || 'Z'
            when 1 then strftime(lt, '%Y-%m-%dT%H:%M:%S.%g') || offs
            when 2 then strftime(lt, '%Y-%m-%dT%H:%M:%S.%g') || replace(offs, ':', '')
            when 3 then strftime(t, '%Y-%m-%d %H:%M:%S.%g')
            when 4 then strftime(t, '%Y-%m-%dT%H:%M:%S.%g')
            when 5 then ts_ms::varchar
            when 6 then ts_ms::varchar
            when 7 then strftime(t, '%Y-%m-%dT%H:%M:%SZ')
            else strftime(lt, '%Y-%m-%d %H:%M:%S.%g') || offs
        end"""
    return f"""
with base as (
    select
        *,
        make_timestamp(ts_ms * 1000) as t,
        make_timestamp(ts_ms * 1000) + to_minutes(off_min) as lt,
        (case when off_min < 0 then '-' else '+' end) || lpad((abs(off_min) // 60)::varchar, 2, '0')
            || ':' || lpad((abs(off_min) % 60)::varchar, 2, '0') as offs,
        case when tpl is null then null
            when not has_slot then coalesce(prefix::varchar, '') || tpl::varchar
                || case when long_suffix then {suffix} else '' end
            else coalesce(prefix::varchar, '') || {fill}
                || case when long_suffix then {suffix} else '' end
        end as content,
        printf('c-{seed}-%07d', conv_n) as cid,
        printf('u-{seed}-%06d', user_n) as uid
    from raw
),
rendered as (
    select
        slot, order_key, pick, is_copy, double_enc, blank_after, canonical, ts_ms, bad, cid,
        case
            when bad = {b['missing_event_id']} then case when pick % 2 = 0 then null else '' end
            when eid_fresh >= 0 then printf('e-{seed}-%07d-x%d', conv_n, eid_fresh)
            else printf('e-{seed}-%07d-%03d', conv_n, seq)
        end as event_id,
        case
            when bad = {b['missing_conversation_id']} then case when pick % 2 = 0 then null else '' end
            when id_mode = 1 then null
            else cid
        end as conversation_id,
        case when bad = {b['missing_conversation_id']} then null when id_mode >= 1 then cid end as session_id,
        case when uid_mode = 1 then null else uid end as user_id,
        case when uid_mode >= 1 then uid end as customer_id,
        case
            when bad = {b['missing_event_type']} then case when pick % 2 = 0 then null else '' end
            else etype_name::varchar
        end as event_type,
        case
            when bad = {b['missing_timestamp']} then case when pick % 2 = 0 then null else '' end
            when bad = {b['unparseable_timestamp']} then
                ['now', 'epoch', strftime(t, '%Y-%m-%d'), 'not a timestamp', '31/12/2025 10:00', 'yesterday'][1 + pick % 6]
            else {ts_forms}
        end as ts_str,
        (ts_kind = 5 and bad not in ({b['missing_timestamp']}, {b['unparseable_timestamp']})) as ts_is_number,
        case when bad = {b['missing_timestamp']} then null else ts_ms end as ts_typed,
        channel::varchar as channel,
        case
            when bad = {b['properties_not_object']} then ['[1, 2, 3]', '42', '"just text"', 'true'][1 + pick % 4]
            else '{{' || concat_ws(',',
            {props}
            ) || '}}'
        end as properties,
        bad = {b['bad_json_line']} as bad_json,
        case when bad = {b['csv_wrong_column_count']} then 1 + pick % 2 else 0 end as csv_bad
    from base
)
select * from rendered
"""


FILE_COLUMNS = ["event_id", "conversation_id", "session_id", "user_id", "customer_id", "event_type",
                "timestamp", "channel", "properties"]

# Contract v1.1 vocabulary, on JSONL events only (pick % 20): `id` (3) or
# `message_id` (4) for event_id, `metadata` for properties (3, 5); a message
# sent as message_received with a sender (6, 7: the user's side names a
# user-side sender, the agent's side `assistant` or none); a sales `booked`
# stage_reached sent as meeting_booked (8).
V11_USER_SENDERS = ["prospect", "customer", " Visitor", "LEAD", "user"]
_V11_MESSAGE_TYPES = ["user_message", "agent_message", *ALIASES["user_message"], *ALIASES["agent_message"]]
V11_SQL = f"""
select
    *,
    case pick % 20 when 3 then '"id":' when 4 then '"message_id":' else '"event_id":' end as id_key,
    case when pick % 20 in (3, 5) then '"metadata":' else '"properties":' end as properties_key,
    pick % 20 in (6, 7) and event_type in ({", ".join(f"'{name}'" for name in _V11_MESSAGE_TYPES)})
        and properties like '{{%}}' as is_v11_message,
    case
        when canonical = {CANONICAL_TYPES.index("user_message")}
            then {sql_list(V11_USER_SENDERS)}[1 + (pick // 20) % {len(V11_USER_SENDERS)}]
        when pick % 20 = 6 then 'assistant'
    end as v11_sender,
    pick % 20 = 8 and event_type = 'stage_reached'
        and properties like '%"funnel":"sales"%' and properties like '%"stage":"booked"%' as is_meeting_booked
from rows_c
"""

JSONL_LINE_SQL = """
select
    case when bad_json then left(line, length(line) // 2) else line end
        || chr(10) || case when blank_after then chr(10) else '' end as line
from (
    select
        bad_json, blank_after, order_key, event_id,
        '{' || concat_ws(',',
            case when event_id is not null then id_key || to_json(event_id) end,
            case when conversation_id is not null then '"conversation_id":' || to_json(conversation_id) end,
            case when session_id is not null then '"session_id":' || to_json(session_id) end,
            case when user_id is not null then '"user_id":' || to_json(user_id) end,
            case when customer_id is not null then '"customer_id":' || to_json(customer_id) end,
            case when is_v11_message then '"event_type":"message_received"'
                when is_meeting_booked then '"event_type":"meeting_booked"'
                when event_type is not null then '"event_type":' || to_json(event_type) end,
            case when ts_str is null then null
                when ts_is_number then '"timestamp":' || ts_str
                else '"timestamp":' || to_json(ts_str) end,
            case when channel is not null then '"channel":' || to_json(channel) end,
            case when properties is null then null
                when double_enc then properties_key || to_json(json_properties)
                else properties_key || json_properties end
        ) || '}' as line
    from (
        select
            *,
            case
                when is_v11_message and v11_sender is not null
                    then '{"sender":' || to_json(v11_sender)
                        || case when properties = '{}' then '}' else ',' || substr(properties, 2) end
                else properties
            end as json_properties
        from (V11_SQL)
    )
    where slot in ({slots})
)
order by order_key, event_id
""".replace("V11_SQL", V11_SQL)

