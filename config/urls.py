from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from intake import views as intake_views

urlpatterns = [
    path("accounts/login/", intake_views.SignInView.as_view(), name="login"),
    path("accounts/session/", intake_views.session, name="session"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path(
        "accounts/password_change/",
        intake_views.ThrottledPasswordChangeView.as_view(),
        name="password_change",
    ),
    path(
        "accounts/password_change/done/",
        auth_views.PasswordChangeDoneView.as_view(),
        name="password_change_done",
    ),
    path("favicon.ico", intake_views.favicon, name="favicon"),
    path("admin/", admin.site.urls),
    path("", include("intake.urls")),
]
