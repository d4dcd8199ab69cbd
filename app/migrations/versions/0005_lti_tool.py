"""LTI 1.3 tool: platforms, deployments, tool keys, login states, linked accounts and contexts, resource links,
deep-linking requests, the grade passback outbox; an index on attempts.finished_at for passback's change scan.

Portable SQL only, like 0001: the same revision runs on SQLite and PostgreSQL.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01
"""
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0005'
down_revision: str | None = '0004'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('lti_keys',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('kid', sa.String(length=64), nullable=False),
    sa.Column('private_jwk', sa.Text(), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('activates_at', sa.DateTime(), nullable=False),
    sa.Column('retired_at', sa.DateTime(), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_lti_keys')),
    sa.UniqueConstraint('kid', name=op.f('uq_lti_keys_kid'))
    )
    op.create_table('lti_platforms',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('issuer', sa.String(length=255), nullable=False),
    sa.Column('client_id', sa.String(length=255), nullable=False),
    sa.Column('auth_login_url', sa.Text(), nullable=False),
    sa.Column('auth_token_url', sa.Text(), nullable=False),
    sa.Column('jwks_url', sa.Text(), nullable=False),
    sa.Column('token_audience', sa.Text(), nullable=True),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_lti_platforms')),
    sa.UniqueConstraint('issuer', 'client_id', name='uq_lti_platforms_issuer_client')
    )
    op.create_table('lti_contexts',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('platform_id', sa.Integer(), nullable=False),
    sa.Column('context_id', sa.String(length=255), nullable=False),
    sa.Column('title', sa.String(length=200), nullable=False),
    sa.Column('label', sa.String(length=200), nullable=False),
    sa.Column('deployment_id', sa.String(length=255), nullable=False),
    sa.Column('memberships_url', sa.Text(), nullable=True),
    sa.Column('roster_synced_at', sa.DateTime(), nullable=True),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['platform_id'], ['lti_platforms.id'],
        name=op.f('fk_lti_contexts_platform_id_lti_platforms'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_lti_contexts')),
    sa.UniqueConstraint('platform_id', 'context_id', name='uq_lti_contexts_platform_context')
    )
    with op.batch_alter_table('lti_contexts', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_lti_contexts_platform_id'), ['platform_id'], unique=False)

    op.create_table('lti_deployments',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('platform_id', sa.Integer(), nullable=False),
    sa.Column('deployment_id', sa.String(length=255), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['platform_id'], ['lti_platforms.id'],
        name=op.f('fk_lti_deployments_platform_id_lti_platforms'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_lti_deployments')),
    sa.UniqueConstraint('platform_id', 'deployment_id', name='uq_lti_deployments_platform_dep')
    )
    with op.batch_alter_table('lti_deployments', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_lti_deployments_platform_id'), ['platform_id'], unique=False)

    op.create_table('lti_login_states',
    sa.Column('state', sa.String(length=64), nullable=False),
    sa.Column('nonce', sa.String(length=64), nullable=False),
    sa.Column('platform_id', sa.Integer(), nullable=False),
    sa.Column('target_link_uri', sa.Text(), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('expires_at', sa.DateTime(), nullable=False),
    sa.Column('used_at', sa.DateTime(), nullable=True),
    sa.ForeignKeyConstraint(['platform_id'], ['lti_platforms.id'],
        name=op.f('fk_lti_login_states_platform_id_lti_platforms'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('state', name=op.f('pk_lti_login_states'))
    )
    with op.batch_alter_table('lti_login_states', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_lti_login_states_expires_at'), ['expires_at'], unique=False)

    op.create_table('lti_user_links',
    sa.Column('platform_id', sa.Integer(), nullable=False),
    sa.Column('sub', sa.String(length=255), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('email', sa.String(length=320), nullable=True),
    sa.Column('name', sa.String(length=200), nullable=True),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('last_launch_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['platform_id'], ['lti_platforms.id'],
        name=op.f('fk_lti_user_links_platform_id_lti_platforms'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'],
        name=op.f('fk_lti_user_links_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('platform_id', 'sub', name=op.f('pk_lti_user_links'))
    )
    with op.batch_alter_table('lti_user_links', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_lti_user_links_user_id'), ['user_id'], unique=False)

    op.create_table('lti_deep_link_requests',
    sa.Column('id', sa.String(length=64), nullable=False),
    sa.Column('platform_id', sa.Integer(), nullable=False),
    sa.Column('deployment_id', sa.String(length=255), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('context_pk', sa.Integer(), nullable=True),
    sa.Column('return_url', sa.Text(), nullable=False),
    sa.Column('data', sa.Text(), nullable=True),
    sa.Column('accept_types', sa.JSON(), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('expires_at', sa.DateTime(), nullable=False),
    sa.Column('used_at', sa.DateTime(), nullable=True),
    sa.ForeignKeyConstraint(['context_pk'], ['lti_contexts.id'],
        name=op.f('fk_lti_deep_link_requests_context_pk_lti_contexts'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['platform_id'], ['lti_platforms.id'],
        name=op.f('fk_lti_deep_link_requests_platform_id_lti_platforms'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'],
        name=op.f('fk_lti_deep_link_requests_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_lti_deep_link_requests'))
    )
    op.create_table('lti_resource_links',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('platform_id', sa.Integer(), nullable=False),
    sa.Column('context_pk', sa.Integer(), nullable=True),
    sa.Column('resource_link_id', sa.String(length=255), nullable=False),
    sa.Column('deployment_id', sa.String(length=255), nullable=False),
    sa.Column('title', sa.String(length=200), nullable=False),
    sa.Column('target_kind', sa.String(length=16), nullable=False),
    sa.Column('target', sa.String(length=200), nullable=False),
    sa.Column('score_maximum', sa.Float(), nullable=True),
    sa.Column('lineitem_url', sa.Text(), nullable=True),
    sa.Column('lineitems_url', sa.Text(), nullable=True),
    sa.Column('ags_scopes', sa.JSON(), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('updated_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['context_pk'], ['lti_contexts.id'],
        name=op.f('fk_lti_resource_links_context_pk_lti_contexts'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['platform_id'], ['lti_platforms.id'],
        name=op.f('fk_lti_resource_links_platform_id_lti_platforms'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_lti_resource_links')),
    sa.UniqueConstraint('platform_id', 'resource_link_id', name='uq_lti_resource_links_platform_link')
    )
    with op.batch_alter_table('lti_resource_links', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_lti_resource_links_context_pk'), ['context_pk'], unique=False)
        batch_op.create_index(batch_op.f('ix_lti_resource_links_platform_id'), ['platform_id'], unique=False)

    op.create_table('lti_grade_syncs',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('link_id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('lti_user_id', sa.String(length=255), nullable=False),
    sa.Column('score_given', sa.Float(), nullable=True),
    sa.Column('score_maximum', sa.Float(), nullable=False),
    sa.Column('changed_at', sa.DateTime(), nullable=False),
    sa.Column('posted_score', sa.Float(), nullable=True),
    sa.Column('posted_maximum', sa.Float(), nullable=True),
    sa.Column('posted_at', sa.DateTime(), nullable=True),
    sa.Column('force', sa.Boolean(), nullable=False),
    sa.Column('tries', sa.Integer(), nullable=False),
    sa.Column('next_try_at', sa.DateTime(), nullable=False),
    sa.Column('last_error', sa.Text(), nullable=True),
    sa.Column('claimed_until', sa.DateTime(), nullable=True),
    sa.ForeignKeyConstraint(['link_id'], ['lti_resource_links.id'],
        name=op.f('fk_lti_grade_syncs_link_id_lti_resource_links'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'],
        name=op.f('fk_lti_grade_syncs_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_lti_grade_syncs')),
    sa.UniqueConstraint('link_id', 'user_id', name='uq_lti_grade_syncs_link_user')
    )
    with op.batch_alter_table('lti_grade_syncs', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_lti_grade_syncs_link_id'), ['link_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_lti_grade_syncs_next_try_at'), ['next_try_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_lti_grade_syncs_user_id'), ['user_id'], unique=False)

    with op.batch_alter_table('attempts', schema=None) as batch_op:
        batch_op.create_index('ix_attempts_finished_at', ['finished_at'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('attempts', schema=None) as batch_op:
        batch_op.drop_index('ix_attempts_finished_at')

    with op.batch_alter_table('lti_grade_syncs', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_lti_grade_syncs_user_id'))
        batch_op.drop_index(batch_op.f('ix_lti_grade_syncs_next_try_at'))
        batch_op.drop_index(batch_op.f('ix_lti_grade_syncs_link_id'))

    op.drop_table('lti_grade_syncs')
    with op.batch_alter_table('lti_resource_links', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_lti_resource_links_platform_id'))
        batch_op.drop_index(batch_op.f('ix_lti_resource_links_context_pk'))

    op.drop_table('lti_resource_links')
    op.drop_table('lti_deep_link_requests')
    with op.batch_alter_table('lti_user_links', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_lti_user_links_user_id'))

    op.drop_table('lti_user_links')
    with op.batch_alter_table('lti_login_states', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_lti_login_states_expires_at'))

    op.drop_table('lti_login_states')
    with op.batch_alter_table('lti_deployments', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_lti_deployments_platform_id'))

    op.drop_table('lti_deployments')
    with op.batch_alter_table('lti_contexts', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_lti_contexts_platform_id'))

    op.drop_table('lti_contexts')
    op.drop_table('lti_platforms')
    op.drop_table('lti_keys')
