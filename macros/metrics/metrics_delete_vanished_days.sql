{#- Post-hook of the incremental metrics models: delete the days that no
    longer have any conversation. delete+insert only replaces days present in
    the new batch, so a day whose only conversation moved to an earlier day
    (a late event) would otherwise keep its old rows. A no-op on a full
    refresh. -#}
{% macro metrics_delete_vanished_days() %}
    {%- if is_incremental() %}
    delete from {{ this }}
    where not exists (
        select 1
        from {{ ref('int_conversations_summarized') }} as int_conversations_summarized
        where int_conversations_summarized.conversation_date = {{ this }}.metric_date
    )
    {%- endif %}
{%- endmacro %}
