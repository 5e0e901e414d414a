"""telephony: the PBX's events, call records, callback attempts, agents' pause states (issue 16)

``telephony_events``: one row per PBX event (unique ``event_id``; ids, type, time, queue, user, cause —
no numbers). ``telephony_calls``: the call record folded from its events; the citizen's number only
encrypted (``caller_enc``). ``telephony_callback_attempts``: attempts to call an abandoned caller back.
``telephony_agents``: pause state per agent (queue_log PAUSE/UNPAUSE).

Revision ID: 0029_telephony
Revises: 0028_knowledge_base
"""
from alembic import op
import sqlalchemy as sa

revision = "0029_telephony"
down_revision = "0028_knowledge_base"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('telephony_agents',
    sa.Column('username', sa.String(length=80), nullable=False),
    sa.Column('state', sa.String(length=20), nullable=False),
    sa.Column('since', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('username', name=op.f('pk_telephony_agents'))
    )
    op.create_table('telephony_events',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('event_id', sa.String(length=128), nullable=False),
    sa.Column('source', sa.String(length=40), nullable=True),
    sa.Column('pbx_call_id', sa.String(length=250), nullable=False),
    sa.Column('type', sa.String(length=20), nullable=False),
    sa.Column('direction', sa.String(length=3), nullable=True),
    sa.Column('queue', sa.String(length=80), nullable=True),
    sa.Column('user', sa.String(length=80), nullable=True),
    sa.Column('cause', sa.String(length=40), nullable=True),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('received_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_telephony_events')),
    sa.UniqueConstraint('event_id', name=op.f('uq_telephony_events_event_id'))
    )
    with op.batch_alter_table('telephony_events', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_telephony_events_pbx_call_id'), ['pbx_call_id'], unique=False)

    op.create_table('telephony_calls',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('pbx_call_id', sa.String(length=250), nullable=False),
    sa.Column('source', sa.String(length=40), nullable=True),
    sa.Column('direction', sa.String(length=3), nullable=False),
    sa.Column('queue', sa.String(length=80), nullable=True),
    sa.Column('line', sa.String(length=80), nullable=True),
    sa.Column('owner_id', sa.String(length=36), nullable=False),
    sa.Column('citizen_id', sa.String(length=36), nullable=True),
    sa.Column('caller_enc', sa.LargeBinary(), nullable=True),
    sa.Column('caller_valid', sa.Boolean(), nullable=False),
    sa.Column('state', sa.String(length=12), nullable=False),
    sa.Column('queued_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('answered_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('ended_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('wait_s', sa.Float(), nullable=True),
    sa.Column('talk_s', sa.Float(), nullable=True),
    sa.Column('abandoned_after_s', sa.Float(), nullable=True),
    sa.Column('operator', sa.String(length=80), nullable=True),
    sa.Column('operator_id', sa.Integer(), nullable=True),
    sa.Column('transferred', sa.Boolean(), nullable=False),
    sa.Column('cause', sa.String(length=40), nullable=True),
    sa.Column('recording_call_id', sa.String(length=36), nullable=True),
    sa.Column('callback_due_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('callback_done_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('callback_via', sa.String(length=40), nullable=True),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['citizen_id'], ['citizens.id'], name=op.f('fk_telephony_calls_citizen_id_citizens')),
    sa.ForeignKeyConstraint(['operator_id'], ['users.id'], name=op.f('fk_telephony_calls_operator_id_users')),
    sa.ForeignKeyConstraint(['recording_call_id'], ['calls.id'], name=op.f('fk_telephony_calls_recording_call_id_calls')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_telephony_calls')),
    sa.UniqueConstraint('pbx_call_id', name=op.f('uq_telephony_calls_pbx_call_id'))
    )
    with op.batch_alter_table('telephony_calls', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_telephony_calls_callback_due_at'), ['callback_due_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_telephony_calls_citizen_id'), ['citizen_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_telephony_calls_operator'), ['operator'], unique=False)
        batch_op.create_index(batch_op.f('ix_telephony_calls_operator_id'), ['operator_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_telephony_calls_queue'), ['queue'], unique=False)
        batch_op.create_index(batch_op.f('ix_telephony_calls_queued_at'), ['queued_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_telephony_calls_recording_call_id'), ['recording_call_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_telephony_calls_state'), ['state'], unique=False)

    op.create_table('telephony_callback_attempts',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('telephony_call_id', sa.String(length=36), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=True),
    sa.Column('via', sa.String(length=20), nullable=False),
    sa.Column('outcome', sa.String(length=20), nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['telephony_call_id'], ['telephony_calls.id'], name=op.f('fk_telephony_callback_attempts_telephony_call_id_telephony_calls'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_telephony_callback_attempts_user_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_telephony_callback_attempts'))
    )
    with op.batch_alter_table('telephony_callback_attempts', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_telephony_callback_attempts_telephony_call_id'), ['telephony_call_id'], unique=False)



def downgrade():
    with op.batch_alter_table('telephony_callback_attempts', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_telephony_callback_attempts_telephony_call_id'))

    op.drop_table('telephony_callback_attempts')
    with op.batch_alter_table('telephony_calls', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_telephony_calls_state'))
        batch_op.drop_index(batch_op.f('ix_telephony_calls_recording_call_id'))
        batch_op.drop_index(batch_op.f('ix_telephony_calls_queued_at'))
        batch_op.drop_index(batch_op.f('ix_telephony_calls_queue'))
        batch_op.drop_index(batch_op.f('ix_telephony_calls_operator_id'))
        batch_op.drop_index(batch_op.f('ix_telephony_calls_operator'))
        batch_op.drop_index(batch_op.f('ix_telephony_calls_citizen_id'))
        batch_op.drop_index(batch_op.f('ix_telephony_calls_callback_due_at'))

    op.drop_table('telephony_calls')
    with op.batch_alter_table('telephony_events', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_telephony_events_pbx_call_id'))

    op.drop_table('telephony_events')
    op.drop_table('telephony_agents')
