"""Courses: courses and their members and invitations, assignments with their problems, extensions, score
overrides (append-only history) and effective assignment scores; users get an optional email.

Only new tables and one new nullable column: every existing attempt, user and progress row stays as it is.
Portable SQL only, like 0001: the same revision runs on SQLite and PostgreSQL.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01
"""
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0004'
down_revision: str | None = '0003'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('courses',
    sa.Column('id', sa.String(length=64), nullable=False),
    sa.Column('title', sa.String(length=200), nullable=False),
    sa.Column('timezone', sa.String(length=64), nullable=False),
    sa.Column('join_code', sa.String(length=32), nullable=True),
    sa.Column('content_hash', sa.String(length=64), nullable=False),
    sa.Column('available', sa.Boolean(), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('updated_at', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_courses')),
    sa.UniqueConstraint('join_code', name=op.f('uq_courses_join_code'))
    )
    op.create_table('assignments',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('course_id', sa.String(length=64), nullable=False),
    sa.Column('slug', sa.String(length=64), nullable=False),
    sa.Column('title', sa.String(length=200), nullable=False),
    sa.Column('description', sa.Text(), nullable=False),
    sa.Column('opens', sa.DateTime(), nullable=True),
    sa.Column('due', sa.DateTime(), nullable=False),
    sa.Column('late_until', sa.DateTime(), nullable=True),
    sa.Column('penalty_kind', sa.String(length=16), nullable=False),
    sa.Column('penalty_value', sa.Float(), nullable=False),
    sa.Column('max_points', sa.Float(), nullable=False),
    sa.Column('file_extensions', sa.JSON(), nullable=False),
    sa.Column('content_hash', sa.String(length=64), nullable=False),
    sa.Column('available', sa.Boolean(), nullable=False),
    sa.Column('updated_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['course_id'], ['courses.id'],
                            name=op.f('fk_assignments_course_id_courses'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_assignments'))
    )
    with op.batch_alter_table('assignments', schema=None) as batch_op:
        batch_op.create_index('uq_assignments_course_slug', ['course_id', 'slug'], unique=True)

    op.create_table('course_invitations',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('course_id', sa.String(length=64), nullable=False),
    sa.Column('username', sa.String(length=64), nullable=True),
    sa.Column('email', sa.String(length=254), nullable=True),
    sa.Column('role', sa.String(length=16), nullable=False),
    sa.Column('invited_by', sa.Integer(), nullable=True),
    sa.Column('invited_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['course_id'], ['courses.id'],
                            name=op.f('fk_course_invitations_course_id_courses'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['invited_by'], ['users.id'],
                            name=op.f('fk_course_invitations_invited_by_users'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_course_invitations'))
    )
    with op.batch_alter_table('course_invitations', schema=None) as batch_op:
        batch_op.create_index('ix_course_invitations_course', ['course_id'], unique=False)
        batch_op.create_index('ix_course_invitations_email', ['email'], unique=False)
        batch_op.create_index('ix_course_invitations_username', ['username'], unique=False)

    op.create_table('course_members',
    sa.Column('course_id', sa.String(length=64), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('role', sa.String(length=16), nullable=False),
    sa.Column('source', sa.String(length=16), nullable=False),
    sa.Column('added_by', sa.Integer(), nullable=True),
    sa.Column('joined_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['added_by'], ['users.id'],
                            name=op.f('fk_course_members_added_by_users'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['course_id'], ['courses.id'],
                            name=op.f('fk_course_members_course_id_courses'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'],
                            name=op.f('fk_course_members_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('course_id', 'user_id', name=op.f('pk_course_members'))
    )
    with op.batch_alter_table('course_members', schema=None) as batch_op:
        batch_op.create_index('ix_course_members_user', ['user_id'], unique=False)

    op.create_table('assignment_problems',
    sa.Column('assignment_id', sa.Integer(), nullable=False),
    sa.Column('problem_id', sa.String(length=64), nullable=False),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.Column('points', sa.Float(), nullable=False),
    sa.ForeignKeyConstraint(['assignment_id'], ['assignments.id'],
                            name=op.f('fk_assignment_problems_assignment_id_assignments'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['problem_id'], ['problems.id'],
                            name=op.f('fk_assignment_problems_problem_id_problems'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('assignment_id', 'problem_id', name=op.f('pk_assignment_problems'))
    )
    with op.batch_alter_table('assignment_problems', schema=None) as batch_op:
        batch_op.create_index('ix_assignment_problems_problem', ['problem_id'], unique=False)

    op.create_table('assignment_scores',
    sa.Column('assignment_id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('points', sa.Float(), nullable=False),
    sa.Column('max_points', sa.Float(), nullable=False),
    sa.Column('late', sa.Boolean(), nullable=False),
    sa.Column('overridden', sa.Boolean(), nullable=False),
    sa.Column('submitted_at', sa.DateTime(), nullable=True),
    sa.Column('updated_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['assignment_id'], ['assignments.id'],
                            name=op.f('fk_assignment_scores_assignment_id_assignments'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'],
                            name=op.f('fk_assignment_scores_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('assignment_id', 'user_id', name=op.f('pk_assignment_scores'))
    )
    op.create_table('extensions',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('assignment_id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('source', sa.String(length=8), nullable=False),
    sa.Column('due', sa.DateTime(), nullable=False),
    sa.Column('late_until', sa.DateTime(), nullable=True),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('granted_by', sa.Integer(), nullable=True),
    sa.Column('granted_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['assignment_id'], ['assignments.id'],
                            name=op.f('fk_extensions_assignment_id_assignments'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['granted_by'], ['users.id'],
                            name=op.f('fk_extensions_granted_by_users'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_extensions_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_extensions'))
    )
    with op.batch_alter_table('extensions', schema=None) as batch_op:
        batch_op.create_index('uq_extensions_assignment_user_source', ['assignment_id', 'user_id', 'source'],
                              unique=True)

    op.create_table('score_overrides',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('assignment_id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('problem_id', sa.String(length=64), nullable=False),
    sa.Column('points', sa.Float(), nullable=True),
    sa.Column('previous_points', sa.Float(), nullable=True),
    sa.Column('comment', sa.Text(), nullable=False),
    sa.Column('set_by', sa.Integer(), nullable=True),
    sa.Column('set_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['assignment_id'], ['assignments.id'],
                            name=op.f('fk_score_overrides_assignment_id_assignments'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['set_by'], ['users.id'],
                            name=op.f('fk_score_overrides_set_by_users'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'],
                            name=op.f('fk_score_overrides_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_score_overrides'))
    )
    with op.batch_alter_table('score_overrides', schema=None) as batch_op:
        batch_op.create_index('ix_score_overrides_key', ['assignment_id', 'user_id', 'problem_id'], unique=False)

    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.add_column(sa.Column('email', sa.String(length=254), nullable=True))
        batch_op.create_unique_constraint(batch_op.f('uq_users_email'), ['email'])



def downgrade() -> None:
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('uq_users_email'), type_='unique')
        batch_op.drop_column('email')

    with op.batch_alter_table('score_overrides', schema=None) as batch_op:
        batch_op.drop_index('ix_score_overrides_key')

    op.drop_table('score_overrides')
    with op.batch_alter_table('extensions', schema=None) as batch_op:
        batch_op.drop_index('uq_extensions_assignment_user_source')

    op.drop_table('extensions')
    op.drop_table('assignment_scores')
    with op.batch_alter_table('assignment_problems', schema=None) as batch_op:
        batch_op.drop_index('ix_assignment_problems_problem')

    op.drop_table('assignment_problems')
    with op.batch_alter_table('course_members', schema=None) as batch_op:
        batch_op.drop_index('ix_course_members_user')

    op.drop_table('course_members')
    with op.batch_alter_table('course_invitations', schema=None) as batch_op:
        batch_op.drop_index('ix_course_invitations_username')
        batch_op.drop_index('ix_course_invitations_email')
        batch_op.drop_index('ix_course_invitations_course')

    op.drop_table('course_invitations')
    with op.batch_alter_table('assignments', schema=None) as batch_op:
        batch_op.drop_index('uq_assignments_course_slug')

    op.drop_table('assignments')
    op.drop_table('courses')
