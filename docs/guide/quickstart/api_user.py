# python manage.py shell < api_user.py  (prints the token of a user allowed on "counter")
from django.contrib.auth.models import User
from rest_framework.authtoken.models import Token

from omniman.models import Channel, ChannelGrant

user, _ = User.objects.get_or_create(username="terminal-1")
ChannelGrant.objects.get_or_create(user=user, channel=Channel.objects.get(code="counter"))
print(Token.objects.get_or_create(user=user)[0].key)
