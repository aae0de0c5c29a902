-- One row per conversation with a sales signal: an event carrying
-- `lead_score`, or a `stage_reached` event of the `sales` funnel.
with

events as (
    select
        event_id,
        conversation_id,
        event_type,
        event_at,
        lead_score,
        funnel
    from {{ ref('stg_events') }}
    where
        is_known_type
        and {{ touched('conversation_id') }}
        and (
            lead_score is not null
            or (event_type = 'stage_reached' and lower(funnel) = 'sales')
        )
),

events_sequenced as (
    select
        events.*,
        row_number() over (
            partition by events.conversation_id
            order by events.event_at, events.event_id
        ) as event_sequence
    from events
),

signals as (
    select
        events_sequenced.conversation_id,
        {{ first_value_by('events_sequenced.lead_score', 'events_sequenced.event_sequence') }} as lead_score,
        count(case when events_sequenced.event_type = 'stage_reached' then 1 end) as sales_stage_events
    from events_sequenced
    group by events_sequenced.conversation_id
)

select * from signals
